// pyprobe is Linux-only (eBPF, /proc); so are its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
