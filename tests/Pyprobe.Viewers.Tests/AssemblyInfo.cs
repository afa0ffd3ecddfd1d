// pyprobe and its writers are Linux-only (see src/Pyprobe.Cli/Program.cs).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
// One headless Chromium at a time: the machine has two cores and each browser starts several processes.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
