// pyprobe is Linux-only (eBPF, /proc); so are its tests. They attach to real processes, one test at a time.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
