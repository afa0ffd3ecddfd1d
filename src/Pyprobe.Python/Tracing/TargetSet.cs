using System.Diagnostics;
using Pyprobe.Python.Launching;

namespace Pyprobe.Python.Tracing;

/// <summary>What a run attaches to, and the held child when it was started by `-- CMD`.</summary>
public sealed class TargetSet : IDisposable
{
    private readonly bool _systemWide;
    private readonly IReadOnlyList<int> _pids;
    // Runs poll every 10 ms and each look at a pid is an open/read/close of /proc/PID/stat (with .NET's flocks):
    // about 1% of a CPU for nothing. A target's exit noticed up to this much later ends the run just as well.
    private static readonly TimeSpan AliveCheckInterval = TimeSpan.FromMilliseconds(100);
    private long _aliveCheckedAt;

    private readonly List<TraceTarget> _targets;
    private readonly Func<int, TraceTarget>? _resolveFollowed;
    private Func<TraceTarget, string>? _attachFollowed;
    private readonly NewProcessWatch? _watch;
    private readonly bool _manyFromStart;
    // -p targets: each one's own new programs (execve) are followed once the run attaches followed processes.
    private readonly bool _followExecs;
    private readonly List<FollowedInterpreters> _execs = [];

    private TargetSet(IReadOnlyList<TraceTarget> targets, HeldCommand? child, bool systemWide, IReadOnlyList<int>? pids = null, bool heldBeforeInterpreter = true,
        Func<int, TraceTarget>? resolveFollowed = null, NewProcessWatch? watch = null, bool manyFromStart = false, bool followExecs = false)
    {
        _followExecs = followExecs;
        _watch = watch;
        _manyFromStart = manyFromStart;
        TargetsHeld = child is not null && heldBeforeInterpreter;
        _targets = [.. targets];
        Child = child;
        _systemWide = systemWide;
        _pids = pids ?? targets.SelectMany(t => t.Pids).ToList();
        _resolveFollowed = resolveFollowed;
    }

    /// <summary>The targets: those resolved at the start, then each process of a followed command attached while it runs.</summary>
    public IReadOnlyList<TraceTarget> Targets => _targets;
    public HeldCommand? Child { get; }

    /// <summary>
    /// The targets are a command held before its interpreter exists (its probes attach by file; there is no process
    /// memory to read or hook to set yet). False for a command followed to its interpreter's start.
    /// </summary>
    public bool TargetsHeld { get; }

    /// <summary>More than one process can produce events, so lines need a pid column.</summary>
    /// <remarks>
    /// --all may find more Pythons at any time: its lines always carry the pid. So does a command that is not itself a
    /// Python (a shell script, env, make): it is followed, and any number of Pythons may come. A command that is a Python
    /// counts once a second Python of it was attached: what is written at the end (calls) shows pids then, while event
    /// lines keep the seed's form chosen at the start (JSON and raw events always carry the pid).
    /// </remarks>
    public bool ManyProcesses => _systemWide || _watch is not null || _manyFromStart || (_resolveFollowed is not null && _targets.Count > 1) || Targets.Any(t => t.AllProcesses) || _pids.Count > 1;

    /// <summary>Targets already resolved (see <see cref="TargetResolver"/>), with the child that runs them, if any.</summary>
    public static TargetSet Of(IReadOnlyList<TraceTarget> targets, HeldCommand? child = null) => new(targets, child, false);

    /// <summary>
    /// Running processes (-p). A run that attaches followed processes (<see cref="FollowInto"/>) also follows each one
    /// into a new program it runs (execve keeps the pid; forks are not followed): stopped at the new program's
    /// interpreter start and attached again with <paramref name="resolve"/>, its old program's links closed first.
    /// </summary>
    public static TargetSet OfRunning(IReadOnlyList<TraceTarget> targets, Func<int, TraceTarget> resolve) =>
        new(targets, null, false, resolveFollowed: resolve, followExecs: true);

    /// <summary>
    /// A command followed until one of its processes started CPython: that process is the target, stopped until released.
    /// Every later CPython process of the command becomes a target too (see <see cref="AttachFollowed"/>), resolved by
    /// <paramref name="resolve"/>. <paramref name="commandIsPython"/>: the command runs a Python itself (not a shell
    /// script or env that starts Pythons), so its lines keep the seed's form until a second Python comes.
    /// </summary>
    public static TargetSet OfFollowed(TraceTarget target, HeldCommand child, Func<int, TraceTarget> resolve, bool commandIsPython) =>
        new([target], child, false, heldBeforeInterpreter: false, resolveFollowed: resolve, manyFromStart: !commandIsPython);

    /// <summary>
    /// From now on, each CPython process the followed command starts is attached with <paramref name="attach"/> (which
    /// returns what it attached, for the user, or throws when nothing could be) by <see cref="AttachFollowed"/>;
    /// <paramref name="wake"/> is called (from another thread) when one is waiting. Nothing happens for other targets.
    /// A session that cannot grow (<paramref name="attach"/> null) stops following: the command's later Pythons run untraced.
    /// </summary>
    public void FollowInto(Func<TraceTarget, string>? attach, Action wake)
    {
        if (attach is null)
        {
            Child?.StopFollowing();
            return;
        }
        _attachFollowed = attach;
        if (_followExecs && _execs.Count == 0)
            foreach (var pid in _pids)
            {
                try
                {
                    _execs.Add(FollowedInterpreters.Start(pid, followForks: false));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or Bpf.Sys.SyscallException or UsdtException)
                {
                    // Without the follower the process is traced as before; only a new program it runs is not.
                }
            }
        if (_resolveFollowed is not null) Child?.Following?.NotifyWith(wake);
        foreach (var following in _execs) following.NotifyWith(wake);
    }

    /// <summary>
    /// Attaches every process of the followed command that waits stopped at its interpreter's start and lets it go;
    /// returns a line for stderr per process (what was attached, or why it runs untraced).
    /// </summary>
    public IReadOnlyList<string> AttachFollowed()
    {
        if (_attachFollowed is null) return [];
        var lines = new List<string>();
        if (_watch is not null)
            foreach (var target in _watch.Poll()) lines.Add(AttachNew(target));
        if (_resolveFollowed is null) return lines;
        foreach (var following in _execs.Prepend(Child?.Following).OfType<FollowedInterpreters>()) AttachStopped(following, lines);
        return lines;
    }

    private void AttachStopped(FollowedInterpreters following, List<string> lines)
    {
        if (following.Failure is { } failure && _followFailureTold is false)
        {
            _followFailureTold = true;
            lines.Add($"pyprobe: warning: stopped following the command's processes ({failure}); Pythons it starts from now on are not traced");
        }
        while (following.TryTake(out var stopped))
        {
            try
            {
                var target = _resolveFollowed!(stopped.Pid);
                var attached = _attachFollowed!(target);
                // A process that ran a new program is one target still: its new program's replaces its old one's.
                var again = _targets.RemoveAll(t => t is { AllProcesses: false, Pids: [var pid] } && pid == stopped.Pid) > 0;
                _targets.Add(target);
                lines.Add(again
                    ? $"pyprobe: pid {stopped.Pid} ran a new program ({target.DisplayPath}): attached {attached}"
                    : $"pyprobe: followed pid {stopped.Pid} ({target.DisplayPath}): attached {attached}");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One process that cannot be traced (gone, not a CPython pyprobe reads, no probe that fires) must not
                // end the run of the others: it runs on untraced, and the user is told which and why.
                lines.Add($"pyprobe: note: pid {stopped.Pid} is not traced: {e.Message}");
            }
            finally
            {
                FollowedInterpreters.Release(stopped);
            }
        }
    }

    private bool _followFailureTold;

    /// <summary>Attaches a process --all found started (it runs on meanwhile: its calls before this are not seen).</summary>
    private string AttachNew(TraceTarget target)
    {
        var pids = string.Join(", ", target.Pids);
        try
        {
            var attached = _attachFollowed!(target);
            _targets.Add(target);
            return $"pyprobe: new pid {pids} ({target.DisplayPath}): attached {attached}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // As for a followed process: one that cannot be traced must not end the run of the others.
            return $"pyprobe: note: new pid {pids} is not traced: {e.Message}";
        }
    }

    /// <summary>
    /// A command held before it runs anything, whose binary's probes attach by file for its pid (<paramref name="target"/>);
    /// every other CPython process it starts is followed and attached like those of <see cref="OfFollowed"/>.
    /// </summary>
    public static TargetSet OfHeld(TraceTarget target, HeldCommand child, Func<int, TraceTarget> resolve) =>
        new([target], child, false, heldBeforeInterpreter: true, resolveFollowed: resolve);

    /// <summary>
    /// --all: the targets found running, and the processes started later that <paramref name="watch"/> finds (attached as
    /// they are found, see <see cref="AttachFollowed"/>); never ends by itself.
    /// </summary>
    public static TargetSet OfAll(IReadOnlyList<TraceTarget> targets, NewProcessWatch watch) => new(targets, null, false, watch: watch);

    /// <summary>Running processes with no probe file to attach to (the sampling profiler reads any CPython): ends when they have all exited.</summary>
    public static TargetSet OfProcesses(IReadOnlyList<int> pids) => new([], null, false, pids);

    /// <summary>A started command whose processes are found as they run (the sampling profiler): ends with the command.</summary>
    public static TargetSet OfCommand(HeldCommand child) => new([], child, false);

    /// <summary>The whole machine: binaries are found while the run goes on (stat without a target); never ends by itself.</summary>
    public static TargetSet SystemWide() => new([], null, true);

    /// <summary>True while at least one traced process (or the child) is alive; --all never ends by itself.</summary>
    public bool AnyTargetAlive()
    {
        if (Child is not null) return !Child.HasExited;
        if (_systemWide || _watch is not null || Targets.Any(t => t.AllProcesses)) return true;
        var now = Stopwatch.GetTimestamp();
        if (_aliveCheckedAt != 0 && Stopwatch.GetElapsedTime(_aliveCheckedAt, now) < AliveCheckInterval) return true;
        if (!_pids.Any(IsAlive)) return false;
        _aliveCheckedAt = now;
        return true;
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var end = stat.LastIndexOf(')');
            return end < 0 || end + 2 >= stat.Length || stat[end + 2] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>
    /// A child still held (an error before it was resumed) is killed: it has run nothing yet, and the
    /// user asked for it to run traced.
    /// </summary>
    public void Dispose()
    {
        foreach (var following in _execs) following.Stop();
        Child?.Dispose();
    }
}
