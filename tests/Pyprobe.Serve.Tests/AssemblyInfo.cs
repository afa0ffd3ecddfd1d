[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
// One pyprobe serve (with its sampler on every CPU) and one Prometheus at a time on a two-core machine.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
