// pyprobe and its writers are Linux-only (see src/Pyprobe.Cli/Program.cs).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
