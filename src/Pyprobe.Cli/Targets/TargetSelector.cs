using Pyprobe.Cli.Commands;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Launching;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Targets;

/// <summary>
/// Turns the command line's target (-p, --all, -- CMD) into a <see cref="TargetSet"/> with
/// <see cref="TargetResolver"/>, checking each named pid or file with <see cref="ProbeFileResolver"/> so every
/// failure is one line that says what to do.
/// </summary>
internal static class TargetSelector
{
    /// <summary>Resolves the user's selection; for `-- CMD` the command is started, held before it runs anything.</summary>
    /// <param name="withoutProbes">Accept processes whose interpreter has no USDT probes (function events come from _PyEval_EvalFrameDefault then).</param>
    /// <param name="allowHookWrite">--all for function events: the eval-frame hook may be set (false: --no-write).</param>
    /// <param name="stderr">Where --all's notes go (how many processes get the hook, how many --no-write leaves out).</param>
    public static TargetSet Resolve(TargetSelection selection, bool withoutProbes = false, bool allowHookWrite = true, TextWriter? stderr = null) => selection switch
    {
        TargetSelection.Processes processes => OfRunning(processes.Pids, withoutProbes ? pid => FromProcessWithOrWithoutProbes(pid, findSitesAhead: allowHookWrite) : FromProcess),
        TargetSelection.AllProcesses { Path: null } when withoutProbes => AllForFunctionEvents(allowHookWrite, stderr ?? TextWriter.Null),
        TargetSelection.AllProcesses { Path: { } path } when withoutProbes => AllOfFileForFunctionEvents(path, allowHookWrite, stderr ?? TextWriter.Null),
        TargetSelection.AllProcesses all => TargetSet.Of(ForAll(all.Path)),
        TargetSelection.Spawn spawn => Launch(spawn.Argv, withoutProbes),
        _ => throw new InvalidOperationException("unknown target selection"),
    };

    /// <summary>-p: the processes, and (see <see cref="TargetSet.OfRunning"/>) a new program one runs, resolved alike.</summary>
    private static TargetSet OfRunning(IReadOnlyList<int> pids, Func<int, TraceTarget> resolve) =>
        TargetSet.OfRunning(TargetResolver.ForProcesses(pids, resolve), resolve);

    private static TraceTarget FromProcess(int pid) => Target(ProbeFileResolver.FromProcess(pid), pid);

    private static TraceTarget Target(ProbeFile file, int pid) =>
        new(file.Process!.HostPath, file.DisplayPath, file.Binary, [pid], file.Version?.Version);

    private static TraceTarget FromProcessWithOrWithoutProbes(int pid) => FromProcessWithOrWithoutProbes(pid, findSitesAhead: false);

    /// <param name="findSitesAhead">
    /// Where the interpreter has no probes, start finding its eval-frame sites at once (<see cref="EvalFrameSites.FindAhead"/>):
    /// the attach will need them, unless --no-write refuses the hook.
    /// </param>
    private static TraceTarget FromProcessWithOrWithoutProbes(int pid, bool findSitesAhead)
    {
        if (ProbeFileResolver.FromProcessIfItHasProbes(pid, out _) is { } file) return Target(file, pid);
        // The interpreter without probes: its runtime binary is the target (function events need no probes).
        try
        {
            return TargetResolver.ForRuntimeBinary(pid, findSitesAhead);
        }
        catch (UnsupportedRuntimeException)
        {
            return FromProcess(pid); // says why, in one line
        }
    }

    private static IReadOnlyList<TraceTarget> ForAll(string? path)
    {
        if (path is not null)
        {
            var file = ProbeFileResolver.FromPath(path);
            var real = new FileInfo(file.DisplayPath).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(file.DisplayPath);
            return [new TraceTarget(real, file.DisplayPath, file.Binary, [], file.Version?.Version)];
        }
        // Every Python with probes that runs now; new processes of the same binaries are traced too.
        var running = TargetResolver.RunningPythons();
        if (running.Count == 0)
            throw new CliException("no running Python with USDT probes found; name the interpreter: --all /usr/bin/python3.X");
        return running;
    }

    /// <summary>
    /// --all for function events: every CPython running now — a binary whose USDT function probes serve is attached by
    /// file (its later processes too), every other process on its own (_PyEval_EvalFrameDefault, with the hook on 3.11+) —
    /// and every process started later that is not covered by a binary's target, attached as it is found.
    /// </summary>
    /// <param name="only">--all PATH: the processes that run PATH (null: every CPython); <paramref name="named"/> is PATH.</param>
    private static TargetSet AllForFunctionEvents(bool allowHookWrite, TextWriter stderr, Func<TraceTarget, bool>? only = null, string? named = null)
    {
        // Before the scan: a process started while it runs is then new, not missed.
        HashSet<string>? coveredBinaries = null;
        var watch = new NewProcessWatch(pid => NewProcessTarget(pid, allowHookWrite, coveredBinaries!, stderr, only));
        var (targets, refused) = TargetResolver.RunningPythonsForFunctionEvents(allowHookWrite, only);
        coveredBinaries = targets.Where(t => t.AllProcesses).Select(t => t.AttachPath).ToHashSet(StringComparer.Ordinal);
        if (refused.Count > 0)
            stderr.WriteLine($"pyprobe: note: {Processes(refused.Count)} ({Versions(refused)}) not traced: their function events need the eval-frame hook and --no-write forbids setting it");
        var hooked = targets.Where(t => !t.AllProcesses && FunctionEventSource.For(t, allowHookWrite).Kind == FunctionEventSourceKind.EvalFrameWithHook).ToList();
        var written = hooked.Sum(t => t.Pids.Count);
        if (written > 0)
            stderr.WriteLine($"pyprobe: note: --all writes the eval-frame hook in {Processes(written)} ({Versions(hooked)}), and in each such process started later; each is put back when pyprobe detaches");
        if (targets.Count == 0)
            throw new CliException(refused.Count > 0
                ? "no running Python whose function events pyprobe can see without writing the eval-frame hook (--no-write)"
                : named is null ? "no running Python found; name the interpreter: --all /usr/bin/python3.X"
                : $"no running process of {named} found: its function events come from each process (it has no USDT function probes that fire), so start one first");
        return TargetSet.OfAll(targets, watch);
    }

    /// <summary>
    /// --all PATH for function events: by file when PATH's USDT function probes serve (every process, now or later);
    /// otherwise (a build without probes, 3.12+) each process that runs PATH, now or later, as --all does for every CPython.
    /// </summary>
    private static TargetSet AllOfFileForFunctionEvents(string path, bool allowHookWrite, TextWriter stderr)
    {
        try
        {
            var target = ForAll(path)[0];
            if (FunctionEventSource.UsdtServesProcesses(target)) return TargetSet.Of([target]);
        }
        catch (CliException e) when (e.Message.Contains("has no USDT probes", StringComparison.Ordinal))
        {
            // A build without --with-dtrace: _PyEval_EvalFrameDefault in each of its processes.
        }
        var named = path.Contains('/') || File.Exists(path) ? path : ExecutableLookup.Find(path) ?? path;
        var real = RealPath(named);
        return AllForFunctionEvents(allowHookWrite, stderr, target => RunsFile(target, real), named);
    }

    /// <summary>The process runs <paramref name="real"/>: as its executable, or as the file its runtime is in (a libpython).</summary>
    private static bool RunsFile(TraceTarget target, string real) =>
        RealPath(target.DisplayPath) == real || target.Pids.Any(pid => ExecutableOf(pid) == real);

    private static string? ExecutableOf(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/exe").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string RealPath(string path)
    {
        try
        {
            return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        catch (IOException)
        {
            return Path.GetFullPath(path);
        }
    }

    private static string Processes(int count) => count == 1 ? "1 process" : $"{count} processes";

    private static string Versions(IEnumerable<TraceTarget> targets) =>
        string.Join(", ", targets.Select(t => t.Version is null ? t.DisplayPath : $"CPython {t.Version}").Distinct());

    /// <summary>A process --all found started: its own target, or null when a binary's target covers it or it cannot be traced (said once).</summary>
    private static TraceTarget? NewProcessTarget(int pid, bool allowHookWrite, IReadOnlySet<string> coveredBinaries, TextWriter stderr, Func<TraceTarget, bool>? only)
    {
        var target = TargetResolver.ForProcessWithOrWithoutProbes(pid);
        if (only is not null && !only(target)) return null;
        switch (TargetResolver.ScopeOf(target, allowHookWrite))
        {
            case TargetResolver.FunctionEventScope.Refused:
                stderr.WriteLine($"pyprobe: note: new pid {pid} ({Versions([target])}) is not traced: its function events need the eval-frame hook and --no-write forbids setting it");
                return null;
            case TargetResolver.FunctionEventScope.ByBinary when coveredBinaries.Contains(target.AttachPath):
                return null;
            default:
                return target;
        }
    }

    /// <summary>A command given after -- must be there to run: said in one line before anything starts.</summary>
    internal static void RequireCommand(IReadOnlyList<string> argv)
    {
        if (argv.Count == 0) throw new CliException("no command given after --");
        if (LaunchedInterpreter.FindOnPath(argv[0]) is null) throw new CliException($"{argv[0]}: command not found");
    }

    /// <summary>
    /// A command that runs a Python with USDT probes that serve the run is held before its exec and its probes attach
    /// by file; any other (a shell script, env, a virtualenv's python, a build without probes, function events from
    /// _PyEval_EvalFrameDefault) is followed until one of its processes starts CPython, which is stopped there for
    /// attaching as a running process.
    /// </summary>
    private static TargetSet Launch(IReadOnlyList<string> argv, bool functionEvents)
    {
        RequireCommand(argv);
        if (DirectTarget(argv, functionEvents) is { } direct)
        {
            var held = HeldCommand.Start(argv);
            try
            {
                held.FollowDescendants();
            }
            catch
            {
                held.Dispose();
                throw;
            }
            return TargetSet.OfHeld(direct with { Pids = [held.Pid] }, held, functionEvents ? FromProcessWithOrWithoutProbes : FromProcess);
        }
        var child = HeldCommand.Start(argv);
        try
        {
            var stopped = child.RunUntilInterpreter()
                ?? throw new CliException($"'{string.Join(' ', argv)}' ended without starting CPython (exit code {child.WaitForExit()})");
            // A followed interpreter's sites are found by the follower, which stopped it at its first code.
            Func<int, TraceTarget> resolve = functionEvents ? FromProcessWithOrWithoutProbes : FromProcess;
            return TargetSet.OfFollowed(resolve(stopped.Pid), child, resolve, commandIsPython: RunsPythonItself(argv, stopped.Pid == child.Pid));
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The command is a Python (through PATH, a `#!` line or the dynamic loader), not a program that may start several:
    /// also a wrapper named like one that became the Python in its own process (a launcher script, a pyenv shim).
    /// </summary>
    private static bool RunsPythonItself(IReadOnlyList<string> argv, bool becameThePython)
    {
        if (becameThePython && Path.GetFileName(argv[0]).StartsWith("python", StringComparison.Ordinal)) return true;
        try
        {
            LaunchedInterpreter.Resolve(argv);
            return true;
        }
        catch (Exception e) when (e is UsdtException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The binary the command runs directly, when its USDT probes serve the run; null when it must be followed.</summary>
    private static TraceTarget? DirectTarget(IReadOnlyList<string> argv, bool functionEvents)
    {
        string binary;
        ProbeFile file;
        try
        {
            binary = LaunchedInterpreter.Resolve(argv);
            file = ProbeFileResolver.FromPath(binary);
        }
        catch (Exception e) when (e is UsdtException or CliException)
        {
            return null;
        }
        var target = new TraceTarget(binary, file.DisplayPath, file.Binary, [], file.Version?.Version);
        if (functionEvents && !FunctionEventSource.UsdtServesProcesses(target)) return null;
        return target;
    }
}
