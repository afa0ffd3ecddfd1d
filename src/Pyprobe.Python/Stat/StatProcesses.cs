using Pyprobe.Python.Versions;
using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Stat;

/// <summary>A running Python process: which probe file it runs (its interpreter or libpython), version, command line.</summary>
public sealed record PythonProcess(int Pid, string HostPath, string DisplayPath, UsdtBinary Binary, string Version, PythonVersion? ParsedVersion, string CommandLine);

/// <summary>
/// Finds the Python processes on the machine by the interpreter file they have mapped (PythonProcessResolver:
/// /proc/PID/maps, libpython, ld.so-started interpreters, containers), never by command name, so python3,
/// uwsgi or a renamed binary are all found. Each pid is resolved once (keyed by its start time).
/// </summary>
public sealed class StatProcesses
{
    private readonly Dictionary<int, (string Start, PythonProcess? Process)> _known = [];
    private readonly Dictionary<string, (UsdtBinary Binary, PythonVersion? Version)> _binaries = new(StringComparer.Ordinal);

    /// <summary>Every live process that runs a Python with probes.</summary>
    public List<PythonProcess> Scan()
    {
        var self = Environment.ProcessId;
        var seen = new HashSet<int>();
        var result = new List<PythonProcess>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid) || pid == self) continue;
            var start = StartTime(pid);
            if (start is null) continue;
            seen.Add(pid);
            if (!_known.TryGetValue(pid, out var entry) || entry.Start != start)
                _known[pid] = entry = (start, Resolve(pid));
            if (entry.Process is { } p) result.Add(p);
        }
        foreach (var gone in _known.Keys.Where(k => !seen.Contains(k)).ToList()) _known.Remove(gone);
        return result;
    }

    /// <summary>A process, resolved now (for -p and -- CMD), or null when it is not a Python with probes.</summary>
    public PythonProcess? Get(int pid)
    {
        var start = StartTime(pid);
        if (start is null) return null;
        if (!_known.TryGetValue(pid, out var entry) || entry.Start != start)
            _known[pid] = entry = (start, Resolve(pid));
        return entry.Process;
    }

    /// <summary>
    /// A process the user named, as its target describes it: a Python without probes (its calls counted through
    /// _PyEval_EvalFrameDefault) is not found by <see cref="Get"/>; null when it is gone.
    /// </summary>
    public static PythonProcess? Named(int pid, TraceTarget target) =>
        StartTime(pid) is null ? null
            : new PythonProcess(pid, target.AttachPath, target.DisplayPath, target.Binary, target.Version?.ToString() ?? "?", target.Version, ProcessCommandLine.Of(pid));

    /// <summary>A target covering every process (now and later) of the binary <paramref name="p"/> runs.</summary>
    public static TraceTarget SystemWideTarget(PythonProcess p) => new(p.HostPath, p.DisplayPath, p.Binary, [], p.ParsedVersion);

    private PythonProcess? Resolve(int pid)
    {
        try
        {
            var target = PythonProcessResolver.Resolve(pid);
            if (!target.UsdtBinary.HasProvider(PythonProbeCatalog.Provider)) return null;
            if (!_binaries.TryGetValue(target.HostPath, out var binary))
            {
                var version = PythonVersionDetector.Detect(target.UsdtBinary.Elf, target.HostPath)?.Version;
                _binaries[target.HostPath] = binary = (target.UsdtBinary, version);
            }
            return new PythonProcess(pid, target.HostPath, target.DisplayPath, binary.Binary, binary.Version?.ToString() ?? "?", binary.Version, ProcessCommandLine.Of(pid));
        }
        catch (Exception e) when (e is UsdtException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks); null when the process is gone or a zombie.</summary>
    private static string? StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var end = stat.LastIndexOf(')');
            if (end < 0) return null;
            var fields = stat[(end + 2)..].Split(' ');
            if (fields.Length < 20 || fields[0] is "Z" or "X") return null;
            return fields[19];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
