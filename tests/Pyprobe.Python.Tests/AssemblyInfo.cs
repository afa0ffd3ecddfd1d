// Tests here attach to real processes and count fds and events: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
