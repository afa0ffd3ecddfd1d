using Pyprobe.Usdt;

namespace Pyprobe.Python.Tracing;

/// <summary>
/// The file whose probes are attached and the processes whose events are kept.
/// </summary>
/// <param name="AttachPath">Path the kernel can open (with /proc/PID/root for processes in containers).</param>
/// <param name="DisplayPath">Path as the user knows it.</param>
/// <param name="Binary">The parsed probes of that file.</param>
/// <param name="Pids">Processes to trace; empty means every process that runs this file.</param>
public sealed record TraceTarget(string AttachPath, string DisplayPath, UsdtBinary Binary, IReadOnlyList<int> Pids)
{
    public bool AllProcesses => Pids.Count == 0;
}
