using Pyprobe.Python.Versions;
using Pyprobe.Python.Processes;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Launching;

namespace Pyprobe.Python.Tracing;

/// <summary>Turns what the user named (pids, a binary) into attach targets, one per distinct Python binary.</summary>
public static class TargetResolver
{
    /// <summary>
    /// Resolves running processes. Processes that run the same binary share one target (one set of
    /// links with a pid filter each); a process in a container gets its own path through /proc/PID/root.
    /// </summary>
    /// <param name="resolveOne">How one pid becomes a target (the CLI's gives each failure its own message); default <see cref="ForProcess"/>.</param>
    public static IReadOnlyList<TraceTarget> ForProcesses(IReadOnlyList<int> pids, Func<int, TraceTarget>? resolveOne = null)
    {
        resolveOne ??= ForProcess;
        var byPath = new Dictionary<string, (TraceTarget First, List<int> Pids)>(StringComparer.Ordinal);
        foreach (var pid in pids.Distinct())
        {
            var target = resolveOne(pid);
            var key = Canonical(target.AttachPath);
            if (byPath.TryGetValue(key, out var existing)) existing.Pids.Add(pid);
            else byPath[key] = (target, [pid]);
        }
        return byPath.Values.Select(entry => entry.First with { Pids = entry.Pids }).ToList();
    }

    /// <summary>One running process: the file it maps that carries the probes.</summary>
    public static TraceTarget ForProcess(int pid) => Target(PythonProcessResolver.Resolve(pid), pid);

    private static TraceTarget Target(PythonProcessTarget process, int pid) =>
        new(process.HostPath, process.DisplayPath, process.UsdtBinary, [pid], DetectVersion(process.HostPath, process.UsdtBinary));

    /// <summary>One running CPython, with or without USDT probes (without: its runtime binary is the target; function events need none).</summary>
    public static TraceTarget ForProcessWithOrWithoutProbes(int pid) =>
        PythonProcessResolver.ResolveIfItHasProbes(pid, out _) is { } process ? Target(process, pid) : ForRuntimeBinary(pid);

    /// <summary>One running CPython by the file that holds its runtime (what _PyEval_EvalFrameDefault is probed in), probes or not.</summary>
    /// <param name="findSitesAhead">Start finding its eval-frame sites on a thread of their own (<see cref="EvalFrame.EvalFrameSites.FindAhead"/>), for an attach that will probe them.</param>
    public static TraceTarget ForRuntimeBinary(int pid, bool findSitesAhead = false)
    {
        using var process = CPythonProcess.Attach(pid);
        var binary = process.Binary;
        if (findSitesAhead) EvalFrame.EvalFrameSites.FindAhead(binary);
        return new TraceTarget(binary.OpenPath, binary.DisplayPath, UsdtBinary.Open(binary.OpenPath), [pid], binary.Version);
    }

    /// <summary>How --all gets function events from one running CPython.</summary>
    public enum FunctionEventScope
    {
        /// <summary>Its binary's USDT function probes fire for every call: a file-wide target covers it and its binary's later processes.</summary>
        ByBinary,
        /// <summary>From _PyEval_EvalFrameDefault (with the hook on 3.11+): attached, and the hook set, per process.</summary>
        ByProcess,
        /// <summary>Only with the hook, and --no-write forbids it.</summary>
        Refused,
    }

    /// <summary>Decides <see cref="FunctionEventScope"/> for <paramref name="target"/> (one process).</summary>
    public static FunctionEventScope ScopeOf(TraceTarget target, bool allowHookWrite) =>
        FunctionEventSource.UsdtServesProcesses(target) ? FunctionEventScope.ByBinary
        : FunctionEventSource.For(target, allowHookWrite).Kind == FunctionEventSourceKind.None ? FunctionEventScope.Refused
        : FunctionEventScope.ByProcess;

    /// <summary>
    /// Every CPython running now, for function events: binaries whose USDT function probes serve, as file-wide targets;
    /// every other process (3.11+ without such probes, builds without probes) as a target of its own, grouped by
    /// binary; and the processes <see cref="FunctionEventScope.Refused"/>. <paramref name="only"/>: the processes to
    /// consider (--all PATH: those that run PATH); null for all.
    /// </summary>
    public static (IReadOnlyList<TraceTarget> Targets, IReadOnlyList<TraceTarget> Refused) RunningPythonsForFunctionEvents(bool allowHookWrite,
        Func<TraceTarget, bool>? only = null)
    {
        var byBinary = new Dictionary<string, TraceTarget>(StringComparer.Ordinal);
        var byProcess = new List<TraceTarget>();
        var refused = new List<TraceTarget>();
        var self = Environment.ProcessId;
        foreach (var pid in ProcessTree.AllPids(except: self))
        {
            try
            {
                var target = ForProcessWithOrWithoutProbes(pid);
                if (only is not null && !only(target)) continue;
                switch (ScopeOf(target, allowHookWrite))
                {
                    case FunctionEventScope.ByBinary:
                        byBinary.TryAdd(target.AttachPath, target with { Pids = [] });
                        break;
                    case FunctionEventScope.ByProcess:
                        byProcess.Add(target);
                        break;
                    default:
                        refused.Add(target);
                        break;
                }
            }
            catch (Exception e) when (e is UsdtException or UnsupportedRuntimeException or IOException or UnauthorizedAccessException)
            {
                // not a CPython pyprobe reads, or gone
            }
        }
        var grouped = byProcess.GroupBy(t => Canonical(t.AttachPath)).Select(g => g.First() with { Pids = g.SelectMany(t => t.Pids).ToList() });
        return ([.. byBinary.Values, .. grouped], refused);
    }

    /// <summary>
    /// Every Python binary with probes that some process runs now, as a target for all its processes (new ones
    /// too). Processes that are gone, not Python or without probes are passed over; empty when there is none.
    /// </summary>
    public static IReadOnlyList<TraceTarget> RunningPythons()
    {
        var targets = new Dictionary<string, TraceTarget>(StringComparer.Ordinal);
        var self = Environment.ProcessId;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid) || pid == self) continue;
            try
            {
                var process = PythonProcessResolver.Resolve(pid);
                if (!targets.ContainsKey(process.HostPath) && process.UsdtBinary.HasProvider(Probes.PythonProbeCatalog.Provider))
                {
                    var version = PythonVersionDetector.Detect(process.UsdtBinary.Elf, process.HostPath)?.Version;
                    targets[process.HostPath] = new TraceTarget(process.HostPath, process.DisplayPath, process.UsdtBinary, [], version);
                }
            }
            catch (UsdtException)
            {
                // not Python, gone, or without probes: only Pythons that can be traced count
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return targets.Values.ToList();
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
