using System.Diagnostics;
using Pyprobe.Bpf.Links;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Analysis;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Commands.Calls;

/// <summary>
/// The life of a kernel-aggregated run (calls, top): resolve targets, say what each CPython version can
/// measure, attach a <see cref="CallStatsSession"/>, release a held command, wait in steps (names are
/// drained as they come) until Ctrl-C / SIGTERM / the target's exit / --duration, detach, take the last
/// snapshot and report. The same stop conditions and messages as trace.
/// </summary>
internal sealed class StatsRun : IDisposable
{
    private readonly TraceTargets _targets;
    private readonly StopSignal _stop;
    private readonly TextWriter _stderr;
    private readonly TimeSpan? _duration;
    private readonly Stopwatch _elapsed = Stopwatch.StartNew();
    private bool _detached;

    private StatsRun(TraceTargets targets, CallStatsSession session, TimeSpan? duration, TextWriter stderr)
    {
        _targets = targets;
        Session = session;
        _duration = duration;
        _stderr = stderr;
        _stop = new StopSignal(session.Reader.Interrupt);
    }

    public CallStatsSession Session { get; }
    public TraceTargets Targets => _targets;
    public TimeSpan Elapsed => _elapsed.Elapsed;

    /// <summary>Ctrl-C or SIGTERM arrived.</summary>
    public bool StopRequested => _stop.Requested;

    /// <summary>Calls are timed in every target (no row will lack times for a version reason).</summary>
    public bool AllTimed => Session.Targets.All(t => t.Timed);

    /// <summary>Why calls of some target have no times, or null.</summary>
    public string? UntimedReason => Session.Targets.FirstOrDefault(t => !t.Timed)?.UntimedReason;

    public static StatsRun Start(TargetSelection selection, bool entryGate, TimeSpan? duration, TextWriter stderr)
    {
        var targets = TraceTargets.Resolve(selection);
        try
        {
            CheckSupport(targets.Targets, stderr);
            var took = Stopwatch.StartNew();
            var session = CallStatsSession.Attach(targets.Targets, new CallStatsOptions(EntryGate: entryGate));
            took.Stop();
            StatsRun run;
            try
            {
                foreach (var t in session.Targets) Notes(t, stderr);
                run = new StatsRun(targets, session, duration, stderr);
            }
            catch
            {
                session.Dispose();
                throw;
            }
            stderr.WriteLine(AttachedLine(session, targets, took.Elapsed));
            stderr.Flush();
            targets.Child?.Resume();
            return run;
        }
        catch
        {
            targets.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits until <paramref name="deadline"/> (time since start), reading name records meanwhile. True when the
    /// deadline came and the run goes on; false when it is over (signal, --duration, every target gone).
    /// </summary>
    public bool WaitUntil(TimeSpan deadline)
    {
        while (true)
        {
            if (_stop.Requested) return false;
            var now = _elapsed.Elapsed;
            if (_duration is { } limit && now >= limit) return false;
            if (!_targets.AnyTargetAlive()) return false;
            if (now >= deadline) return true;
            var until = _duration is { } d && d < deadline ? d : deadline;
            var wait = Math.Clamp((int)Math.Ceiling((until - now).TotalMilliseconds), 1, 100);
            Session.Reader.WaitForData(wait);
            Session.DrainNames();
        }
    }

    /// <summary>Detaches (semaphores drop, the 3.11 gate closes) and reads what the kernel counted.</summary>
    public CallStats Finish(bool reset)
    {
        Session.Detach();
        _detached = true;
        return Session.Snapshot(reset);
    }

    /// <summary>Says how the run ended and returns the exit code (the command's own for -- CMD).</summary>
    public int Complete(CallStats last, ulong totalCalls)
    {
        if (!_detached) Session.Detach();
        _stderr.WriteLine($"Detached after {_elapsed.Elapsed.TotalSeconds:0.00} s: {totalCalls} calls counted in the kernel");
        if (last.StatsMapFull > 0)
            _stderr.WriteLine($"pyprobe: warning: {last.StatsMapFull} calls were not counted because the kernel's function table was full");
        if (last.NoStackSlot > 0)
            _stderr.WriteLine($"pyprobe: warning: {last.NoStackSlot} calls were not timed because no thread stack slot was free");
        if (last.LostNameRecords > 0)
            _stderr.WriteLine($"pyprobe: note: {last.LostNameRecords} function names did not fit the name ring and were read from the process instead");
        _stderr.Flush();
        if (_targets.Child is { } child)
        {
            if (_stop.Requested && !child.HasExited) _stop.ForwardTo(child.Pid);
            return child.WaitForExit();
        }
        return ExitCodes.Success;
    }

    /// <summary>Fails when no target has function probes (3.12–3.14); notes targets without them.</summary>
    private static void CheckSupport(IReadOnlyList<TraceTarget> targets, TextWriter stderr)
    {
        var usable = 0;
        var notes = new List<string>();
        foreach (var target in targets)
        {
            if (target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__return") is not null)
            {
                usable++;
                continue;
            }
            var reason = Reason(target);
            notes.Add($"pyprobe: note: {Describe(target)} has no function__return probe{(reason is null ? "" : $" ({reason})")}");
        }
        if (usable == 0)
        {
            var reason = targets.Select(Reason).FirstOrDefault(r => r is not null);
            throw new CliException($"{string.Join(", ", targets.Select(Describe))} has no function__entry/function__return probes{(reason is null ? "" : $" ({reason})")}; call statistics need CPython 3.8-3.11 or 3.15+ built with --with-dtrace");
        }
        foreach (var note in notes) stderr.WriteLine(note);
    }

    private static string? Reason(TraceTarget target) => target.Version is { } v && PythonProbeCatalog.Support("function__return", v.Major, v.Minor) is { Firing: ProbeFiring.No } s ? s.Reason : null;

    private static void Notes(CallStatsTarget t, TextWriter stderr)
    {
        var target = t.Target;
        if (t.Gated)
            stderr.WriteLine($"pyprobe: note: {Describe(target)} emits function__entry only while tracing is on; pyprobe turns it on, which slows call-heavy code about 10x until it detaches (--no-entry-gate keeps full speed; calls are then counted without times)");
        else if (!t.Timed)
            stderr.WriteLine($"pyprobe: note: {Describe(target)}: calls are counted without times: {t.UntimedReason}");
        else if (CPythonFacts.For(target.Version)?.FunctionProbesRestoredWithCaveats == true)
            stderr.WriteLine($"pyprobe: note: {Describe(target)}: generator creation adds an entry without a return and throw() a return without an entry (pyprobe keeps its stacks right; such returns are counted untimed), and the experimental JIT, when on, hides most calls");
    }

    internal static string Describe(TraceTarget target) => target.Version is null ? target.DisplayPath : $"Python {target.Version} ({target.DisplayPath})";

    private static string AttachedLine(CallStatsSession session, TraceTargets targets, TimeSpan took)
    {
        var probes = session.Targets.Any(t => t.Timed) ? "function__entry, function__return" : "function__return";
        var where = string.Join("; ", targets.Targets.Select(t => t.AllProcesses ? $"{t.DisplayPath} (every process)" : $"{t.DisplayPath} (pid {string.Join(", ", t.Pids)})"));
        var mode = session.AttachMode == UprobeAttachMode.UprobeMulti ? "uprobe_multi" : "perf-event uprobes";
        return $"Attached {probes} to {where} via {mode} in {took.TotalMilliseconds:0.0} ms. Ctrl-C to stop.";
    }

    public void Dispose()
    {
        _stop.Dispose();
        Session.Dispose();
        _targets.Dispose();
    }
}
