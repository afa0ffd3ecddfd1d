// Fault tests kill processes, count fds and kernel objects and compare semaphores: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
// pyprobe is Linux-only (eBPF, /proc); so are its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
