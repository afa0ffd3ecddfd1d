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
    private readonly Dictionary<int, (string Start, PythonProcess? Process, bool WithoutProbes)> _known = [];
    private readonly List<PythonProcess> _newWithoutProbes = [];
    private readonly Dictionary<string, (UsdtBinary Binary, PythonVersion? Version)> _binaries = new(StringComparer.Ordinal);

    /// <summary>Every live process that runs a Python with probes.</summary>
    public List<PythonProcess> Scan()
    {
        var self = Environment.ProcessId;
        var seen = new HashSet<int>();
        var result = new List<PythonProcess>();
        _newWithoutProbes.Clear();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid) || pid == self) continue;
            var start = StartTime(pid);
            if (start is null) continue;
            seen.Add(pid);
            if (!_known.TryGetValue(pid, out var entry) || entry.Start != start)
            {
                _known[pid] = entry = Known(start, pid);
                if (entry.WithoutProbes) _newWithoutProbes.Add(entry.Process!);
            }
            if (entry.Process is { } p && !entry.WithoutProbes) result.Add(p);
        }
        foreach (var gone in _known.Keys.Where(k => !seen.Contains(k)).ToList()) _known.Remove(gone);
        return result;
    }

    /// <summary>
    /// The Python processes whose interpreter has no probes (pyenv, Docker, uv and conda builds) that the last
    /// <see cref="Scan"/> found for the first time: nothing counts them machine-wide, but the user should hear that
    /// they are there, once.
    /// </summary>
    public IReadOnlyList<PythonProcess> NewWithoutProbes => _newWithoutProbes;

    /// <summary>A process, resolved now (for -p and -- CMD), or null when it is not a Python with probes.</summary>
    public PythonProcess? Get(int pid)
    {
        var start = StartTime(pid);
        if (start is null) return null;
        if (!_known.TryGetValue(pid, out var entry) || entry.Start != start)
            _known[pid] = entry = Known(start, pid);
        return entry.WithoutProbes ? null : entry.Process;
    }

    private (string, PythonProcess?, bool) Known(string start, int pid)
    {
        var process = Resolve(pid, out var withoutProbes);
        return (start, process, withoutProbes);
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

    /// <param name="withoutProbes">Whether the process found runs an interpreter without probes.</param>
    private PythonProcess? Resolve(int pid, out bool withoutProbes)
    {
        withoutProbes = false;
        try
        {
            // A Python without probes is resolved too (its file opened once per binary), for WithoutProbes.
            var (hostPath, displayPath, openPath, withProbes) = PythonProcessResolver.ResolveIfItHasProbes(pid, out var without) is { } target
                ? (target.HostPath, target.DisplayPath, (string?)null, target.UsdtBinary)
                : (without!.HostPath, without.DisplayPath, without.OpenPath, null);
            withoutProbes = withProbes is null;
            if (!_binaries.TryGetValue(hostPath, out var binary))
            {
                var file = withProbes ?? UsdtBinary.Open(openPath!);
                _binaries[hostPath] = binary = (file, PythonVersionDetector.Detect(file.Elf, hostPath)?.Version);
            }
            return new PythonProcess(pid, hostPath, displayPath, binary.Binary, binary.Version?.ToString() ?? "?", binary.Version, ProcessCommandLine.Of(pid));
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
