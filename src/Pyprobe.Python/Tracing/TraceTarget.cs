using Pyprobe.Python.Runtime;
using Pyprobe.Python.Versions;

namespace Pyprobe.Python.Tracing;

/// <summary>
/// One Python binary whose probes are attached, and the processes whose events are kept.
/// </summary>
/// <param name="AttachPath">Path the kernel can open (through /proc/PID/root for processes in containers).</param>
/// <param name="DisplayPath">Path as the user knows it.</param>
/// <param name="Binary">The parsed probes of that file.</param>
/// <param name="Pids">Processes to trace; empty means every process that runs this file, now or later.</param>
/// <param name="Version">The CPython version, which decides what fires.</param>
public sealed record TraceTarget(string AttachPath, string DisplayPath, UsdtBinary Binary, IReadOnlyList<int> Pids, PythonVersion? Version)
{
    public bool AllProcesses => Pids.Count == 0;

    /// <summary>Where this binary's code objects keep their fields: the version's table, or the binary's debug offsets (3.13+); null where neither says.</summary>
    public CodeLayout? CodeObjectLayout(CPythonFacts facts)
    {
        try
        {
            return facts.TableLayout?.Code ?? CPythonBinary.FromElf(Binary.Elf, AttachPath, DisplayPath).Layout.Code;
        }
        catch (UnsupportedRuntimeException)
        {
            return null;
        }
    }
}
