using Pyprobe.Python.Versions;
using Pyprobe.Python.Processes;

namespace Pyprobe.Cli.Targets;

/// <summary>
/// A file whose USDT probes a command shows or attaches to.
/// </summary>
/// <param name="DisplayPath">The path to print: as the user gave it (like bpftrace), the PATH lookup result, or for -p the path as the process sees it.</param>
/// <param name="Binary">The parsed probes (its Path is where the file was actually read from).</param>
/// <param name="Version">The CPython version, when detectable.</param>
/// <param name="Process">Set when the file was found through -p PID.</param>
internal sealed record ProbeFile(string DisplayPath, UsdtBinary Binary, DetectedPythonVersion? Version, PythonProcessTarget? Process);
