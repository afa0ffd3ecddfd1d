using Pyprobe.Python.Versions;
using Pyprobe.Usdt;

namespace Pyprobe.Python.Tracing;

/// <summary>Turns what the user named (pids, a binary) into attach targets, one per distinct Python binary.</summary>
public static class TargetResolver
{
    /// <summary>
    /// Resolves running processes. Processes that run the same binary share one target (one set of
    /// links with a pid filter each); a process in a container gets its own path through /proc/PID/root.
    /// </summary>
    public static IReadOnlyList<TraceTarget> ForProcesses(IReadOnlyList<int> pids)
    {
        var byPath = new Dictionary<string, (PythonProcessTarget First, List<int> Pids)>(StringComparer.Ordinal);
        foreach (var pid in pids.Distinct())
        {
            var process = PythonProcessResolver.Resolve(pid);
            var key = Canonical(process.HostPath);
            if (byPath.TryGetValue(key, out var existing)) existing.Pids.Add(pid);
            else byPath[key] = (process, [pid]);
        }
        return byPath.Values
            .Select(entry => new TraceTarget(entry.First.HostPath, entry.First.DisplayPath, entry.First.UsdtBinary, entry.Pids, DetectVersion(entry.First.HostPath, entry.First.UsdtBinary)))
            .ToList();
    }

    /// <summary>Every process that runs <paramref name="path"/> (an interpreter or a libpython), now or later.</summary>
    public static TraceTarget ForBinary(string path)
    {
        var binary = OpenWithProbes(path, path);
        return new TraceTarget(path, path, binary, [], DetectVersion(path, binary));
    }

    /// <summary>A binary about to be run by a held child process.</summary>
    public static TraceTarget ForLaunchedProcess(string path, int pid)
    {
        var binary = OpenWithProbes(path, path);
        return new TraceTarget(path, path, binary, [pid], DetectVersion(path, binary));
    }

    private static UsdtBinary OpenWithProbes(string path, string display)
    {
        if (!File.Exists(path)) throw new UsdtException($"{display}: no such file");
        var binary = UsdtBinary.Open(path);
        if (!binary.HasProvider(Probes.PythonProbeCatalog.Provider))
            throw new UsdtException($"{display} has no USDT probes: this interpreter was built without --with-dtrace (Debian's python3.X packages have them)");
        return binary;
    }

    private static PythonVersion? DetectVersion(string path, UsdtBinary binary)
        => PythonVersionDetector.Detect(binary.Elf, path)?.Version ?? PythonVersionDetector.FromFileName(path);

    private static string Canonical(string path)
    {
        try
        {
            return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        catch (IOException)
        {
            return path;
        }
    }
}
