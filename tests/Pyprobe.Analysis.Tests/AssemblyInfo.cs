// Tests here attach to real processes and read kernel maps: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
