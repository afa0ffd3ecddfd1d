using Pyprobe.Cli.Targets;
using Pyprobe.Python.Analysis;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Cli.Commands.Calls;

/// <summary>
/// What calls and top add to the run lifecycle: say what each CPython version can measure, attach a
/// <see cref="CallStatsSession"/>, and report what the kernel counted (function names are drained while the run
/// waits for its interval deadlines).
/// </summary>
internal static class CallsRun
{
    public static TracingRun<CallStatsSession> Start(CallSettings settings, TextWriter stderr) =>
        TracingRun<CallStatsSession>.Start(TargetSelector.Resolve(settings.Selection, withoutProbes: true, settings.AllowWrite, stderr), targets =>
        {
            LaunchPhases.Mark("target resolved");
            var held = targets.TargetsHeld;
            CheckSupport(targets.Targets, stderr, settings.AllowWrite, held);
            var session = CallStatsSession.Attach(targets.Targets, new CallStatsOptions(EntryGate: settings.EntryGate, AllowHookWrite: settings.AllowWrite, TargetsHeld: held, Timed: settings.Timed));
            LaunchPhases.Mark("session attached");
            try
            {
                foreach (var t in session.Targets) Notes(t, settings.Timed, stderr);
            }
            catch
            {
                session.Dispose();
                throw;
            }
            var probes = string.Join(", ", session.Targets.SelectMany(t => t.ProbeNames).Distinct().Order(StringComparer.Ordinal));
            var sources = string.Join("; ", session.Targets.Select(t => t.Described).Distinct());
            return new Attachment<CallStatsSession>(session, probes, $"{TargetText.Where(targets.Targets)} [{sources}]", session.AttachProcess);
        }, settings.Duration, stderr);

    /// <summary>Calls are timed in every target (no row will lack times for a version reason).</summary>
    public static bool AllTimed(CallStatsSession session) => session.Targets.All(t => t.Timed);

    /// <summary>Why calls of some target have no times, or null.</summary>
    public static string? UntimedReason(CallStatsSession session) => session.Targets.FirstOrDefault(t => !t.Timed)?.UntimedReason;

    /// <summary>Detaches (semaphores drop, the 3.11 gate closes) and reads what the kernel counted last.</summary>
    public static CallStats Finish(TracingRun<CallStatsSession> run, bool interval)
    {
        run.Detach();
        return interval ? run.Session.TakeInterval() : run.Session.Snapshot();
    }

    /// <summary>How the run ended: calls counted, and what the kernel could not count or time.</summary>
    public static IEnumerable<string> Report(TracingRun<CallStatsSession> run, CallStats last, ulong totalCalls)
    {
        yield return $"{run.DetachedAfter}: {totalCalls} calls counted in the kernel";
        if (last.StatsMapFull > 0)
            yield return $"pyprobe: warning: {last.StatsMapFull} calls were not counted: the kernel had no entry for them in its function table and the ring buffer to user space was full";
        if (last.NoStackSlot > 0)
            yield return $"pyprobe: warning: {last.NoStackSlot} calls were not timed because no thread stack slot was free";
        if (last.LostNameRecords > 0)
            yield return $"pyprobe: note: {last.LostNameRecords} function names did not fit the name ring and were read from the process instead";
    }

    /// <summary>Fails when no target gives function events (USDT probes or _PyEval_EvalFrameDefault); notes targets without them.</summary>
    private static void CheckSupport(IReadOnlyList<TraceTarget> targets, TextWriter stderr, bool allowWrite, bool held)
    {
        var usable = 0;
        var notes = new List<string>();
        foreach (var target in targets)
        {
            var source = FunctionEventSource.ForCalls(target, allowWrite, held);
            if (source.FromEvalFrame || target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__return") is not null)
            {
                usable++;
                continue;
            }
            var reason = source.Reason ?? Reason(target);
            notes.Add($"pyprobe: note: {Describe(target)} has no function__return probe{(reason is null ? "" : $" ({reason})")}");
        }
        if (usable == 0)
        {
            var reason = targets.Select(Reason).FirstOrDefault(r => r is not null);
            throw new NoFunctionEventsException($"{string.Join(", ", targets.Select(Describe))} has no function__entry/function__return probes{(reason is null ? "" : $" ({reason})")}; call statistics need CPython 3.8-3.11 or 3.15+ built with --with-dtrace");
        }
        foreach (var note in notes) stderr.WriteLine(note);
    }

    private static string? Reason(TraceTarget target) => target.Version is { } v && PythonProbeCatalog.Support("function__return", v.Major, v.Minor) is { Firing: ProbeFiring.No } s ? s.Reason : null;

    private static void Notes(CallStatsTarget t, bool timesAsked, TextWriter stderr)
    {
        var target = t.Target;
        if (t.Source.Note is { } note) stderr.WriteLine($"pyprobe: note: {note}");
        // Counting alone is what was asked: nothing to explain.
        if (!timesAsked) return;
        if (t.Gated)
            stderr.WriteLine($"pyprobe: note: {Describe(target)} emits function__entry only while tracing is on; pyprobe turns it on, which slows call-heavy code about 10x until it detaches (--no-entry-gate keeps full speed; calls are then counted without times)");
        else if (!t.Timed)
            stderr.WriteLine($"pyprobe: note: {Describe(target)}: calls are counted without times: {t.UntimedReason}");
        else if (!t.Source.FromEvalFrame && CPythonFacts.For(target.Version)?.FunctionProbesRestoredWithCaveats == true)
            stderr.WriteLine($"pyprobe: note: {Describe(target)}: generator creation adds an entry without a return and throw() a return without an entry (pyprobe keeps its stacks right; such returns are counted untimed), and the experimental JIT, when on, hides most calls");
    }

    private static string Describe(TraceTarget target) => TargetText.Describe(target);
}
