using System.IO.Enumeration;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Cli.Output.Raw;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Bpf.Sys;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sessions;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Cli.Commands.Trace;

/// <summary>
/// What trace and flow add to the run lifecycle: say what will and will not fire on each CPython version,
/// attach the event program, and format every event into a buffer as it is drained.
/// </summary>
internal static class TraceRun
{
    public sealed record Settings(
        IReadOnlyList<PythonProbe> Probes,
        IReadOnlyList<int>? Tids,
        string? FunctionGlob,
        string? FileGlob,
        TimeSpan? Duration,
        bool EntryGate,
        uint RingBufferBytes,
        bool AllowHookWrite = true,
        bool KeyFunctionsByCodeObject = false,
        ConsumerPriority Priority = ConsumerPriority.Auto);

    /// <param name="show">Given the format's writer, what to write for each event that passes the filters.</param>
    public static int Run(TargetSelection selection, Settings settings, OutputFormat format, TimeFormat time, Func<IEventStreamWriter, ProbeEventHandler> show, Func<EventBuffer> openOutput, TextWriter stderr)
    {
        var (run, output) = Start(selection, settings, openOutput, o => o.WriterThreadId, stderr);
        using var _ = run;
        using var buffer = output;
        var session = run.Session;
        var writer = EventStreamWriters.For(format, new EventStreamContext(buffer, new EventClock(), time, run.Targets.ManyProcesses));
        var write = show(writer);

        long delivered = 0, shown = 0;
        var filter = new EventFilter(settings.FunctionGlob, settings.FileGlob);
        ProbeEventHandler handler = (in ProbeEvent e) =>
        {
            delivered++;
            if (!filter.Accepts(e)) return;
            shown++;
            write(e);
            buffer.FlushIfFull();
        };
        run.Stream(() => session.Drain(handler), buffer.Flush, buffer.AfterPoll);
        writer.End(new EventStreamEnd(EventClock.MonotonicNowNs(), session.Lost));
        buffer.Flush();
        return run.Complete(run.EventReport(delivered, session.Lost, shown, "; a larger --ring-buffer-mb or a narrower probe selection helps"));
    }

    /// <summary>
    /// trace --format raw: the ring's records go to the file as the kernel framed them, with nothing decoded while tracing (Output/Raw; pyprobe convert formats them later).
    /// </summary>
    public static int Capture(TargetSelection selection, Settings settings, TimeFormat time, string? path, TextWriter stderr)
    {
        if (string.IsNullOrEmpty(path) || path == "-")
            throw new UsageException("--format raw writes a binary capture: give it a file with -o FILE (then pyprobe convert FILE)");
        if (settings.FunctionGlob is not null || settings.FileGlob is not null)
            throw new UsageException("--function and --file filter decoded events; a raw capture keeps every event as it comes (convert it, then filter)");
        var (run, capture) = Start(selection, settings, () => RawCaptureWriter.Create(path), o => o.WriterThreadId, stderr);
        using var _ = run;
        using var file = capture;
        var session = run.Session;
        var clock = new EventClock();
        file.WriteHeader(new RawCaptureHeader(clock.MonotonicToUnixNs, clock.LocalOffsetNs, run.Targets.ManyProcesses, time, TargetText.Where(run.Targets.Targets), session.Probes));

        long delivered = 0;
        FramedRecordsHandler handler = (framed, records) =>
        {
            file.Write(framed);
            delivered += records;
        };
        run.Stream(() => session.Reader.DrainFramed(handler), file.Flush);
        return run.Complete(run.EventReport(delivered, session.Lost, null, "; a larger --ring-buffer-mb or a narrower probe selection helps"));
    }

    /// <summary>
    /// What both forms share: support checks, attach, the output opened once the probes are live, and the reading
    /// thread (this one) and the output's writer raised to --priority before the Attached line.
    /// </summary>
    private static (TracingRun<TraceSession> Run, TOutput Output) Start<TOutput>(TargetSelection selection, Settings settings, Func<TOutput> openOutput, Func<TOutput, int?> writerThread, TextWriter stderr)
        where TOutput : class, IDisposable
    {
        // The ring is made while the command line was parsed and the targets are resolved; the session takes it (or, on any
        // failure, it is closed here).
        using var ring = RecordMapAhead.Take(settings.RingBufferBytes);
        var targets = TargetSelector.Resolve(selection, withoutProbes: settings.Probes.Any(IsFunctionProbe), settings.AllowHookWrite, stderr);
        LaunchPhases.Mark("target resolved");
        IReadOnlyList<PythonProbe> probes;
        try
        {
            probes = CheckSupport(targets.Targets, settings, targets.TargetsHeld, stderr);
        }
        catch
        {
            targets.Dispose();
            throw;
        }
        TOutput? output = null;
        var run = TracingRun<TraceSession>.Start(targets, t =>
        {
            var session = TraceSession.Attach(t.Targets, probes, new TraceSessionOptions(settings.RingBufferBytes, Tids: settings.Tids, EntryGate: settings.EntryGate, AllowHookWrite: settings.AllowHookWrite, TargetsHeld: t.TargetsHeld,
                KeyFunctionsByCodeObject: settings.KeyFunctionsByCodeObject, PreparedRecordMap: ring));
            LaunchPhases.Mark("session attached");
            try
            {
                output = openOutput();
            }
            catch
            {
                session.Dispose();
                throw;
            }
            var governor = ConsumerPriorities.Start(settings.Priority, writerThread(output), session, stderr);
            return new Attachment<TraceSession>(session, AttachedProbes(session), TargetText.Where(t.Targets), session.AttachProcess, governor);
        }, settings.Duration, stderr);
        return (run, output!);
    }

    /// <summary>
    /// The probes attached, each function probe with where its events come from and what they cost; probes that share
    /// a source are named together before it ("function__entry, function__return (uprobe on …)"), not each with a copy.
    /// </summary>
    private static string AttachedProbes(TraceSession session)
    {
        var usdtFunctionEvents = new FunctionEventSource(FunctionEventSourceKind.Usdt, null, null).Described;
        var described = session.Probes
            .Select(p => (Name: p.Probe.Name, Source: p.Source != "USDT" ? p.Source : IsFunctionProbe(p.Probe) ? usdtFunctionEvents : null))
            .Distinct();
        return string.Join(", ", described.GroupBy(p => p.Source).Select(group =>
            string.Join(", ", group.Select(p => p.Name)) + (group.Key is { } source ? $" ({source})" : "")));
    }

    /// <summary>
    /// Drops probes a target cannot fire and says why; fails when nothing requested can fire anywhere.
    /// </summary>
    private static IReadOnlyList<PythonProbe> CheckSupport(IReadOnlyList<TraceTarget> targets, Settings settings, bool held, TextWriter stderr)
    {
        var usable = new List<PythonProbe>();
        foreach (var probe in settings.Probes)
        {
            var anywhere = false;
            foreach (var target in targets)
            {
                if (IsFunctionProbe(probe) && FunctionEventSource.For(target, settings.AllowHookWrite, held, FunctionEventSource.WantsReturns(settings.Probes)) is var source && source.Kind != FunctionEventSourceKind.Usdt)
                {
                    if (source.Kind == FunctionEventSourceKind.None)
                    {
                        stderr.WriteLine($"pyprobe: note: {Describe(target)} has no {probe.Name} probe that fires ({source.Reason})");
                        continue;
                    }
                    if (source.Note is { } note && probe == settings.Probes.First(IsFunctionProbe)) stderr.WriteLine($"pyprobe: note: {note}");
                    anywhere = true;
                    continue;
                }
                var version = target.Version;
                var present = target.Binary.FindProbe(PythonProbeCatalog.Provider, probe.Name) is not null;
                var support = version is null ? null : PythonProbeCatalog.Support(probe.Name, version.Major, version.Minor);
                if (!present)
                {
                    stderr.WriteLine($"pyprobe: note: {Describe(target)} has no {probe.Name} probe{(support is { Firing: ProbeFiring.No } ? $" ({support.Reason})" : "")}");
                    continue;
                }
                anywhere = true;
                if (CPythonFacts.For(version)?.FunctionEntryNeedsLineSemaphore == true && probe.Name == "function__entry")
                {
                    stderr.WriteLine(settings.EntryGate
                        ? $"pyprobe: note: {Describe(target)} emits function__entry only while tracing is on; pyprobe turns it on, which slows call-heavy code about 10x until it detaches (--no-entry-gate keeps full speed, without entries)"
                        : $"pyprobe: note: {Describe(target)} emits function__entry only while tracing is on and --no-entry-gate keeps it off: expect almost no entries (function__return fires for every call)");
                }
                else if (support is { Firing: ProbeFiring.Partly } && CPythonFacts.For(version)?.FunctionProbesRestoredWithCaveats == true)
                {
                    stderr.WriteLine($"pyprobe: note: {Describe(target)}: {probe.Name} {support.Reason}");
                }
            }
            if (anywhere) usable.Add(probe);
        }
        if (usable.Count == 0)
        {
            var names = string.Join(", ", settings.Probes.Select(p => p.Name));
            var reasons = targets.Select(t => t.Version is null ? null : settings.Probes.Select(p => PythonProbeCatalog.Support(p.Name, t.Version.Major, t.Version.Minor)).FirstOrDefault(s => s.Firing == ProbeFiring.No)?.Reason).FirstOrDefault(r => r is not null);
            throw new CliException($"{string.Join(", ", targets.Select(Describe))} has no {names} probe{(reasons is null ? "" : $" ({reasons})")}; gc__*, import__* and audit work on every version");
        }
        return usable;
    }

    private static string Describe(TraceTarget target) => TargetText.Describe(target);

    private static bool IsFunctionProbe(PythonProbe probe) => probe.Name is "function__entry" or "function__return";

    /// <summary>Keeps --function/--file in user space: globs over strings have no cheap kernel form.</summary>
    private sealed class EventFilter(string? functionGlob, string? fileGlob)
    {
        public bool Accepts(in ProbeEvent e)
        {
            if (functionGlob is null && fileGlob is null) return true;
            var arguments = e.Probe.Probe.Arguments;
            if (arguments.Count < 2 || arguments[0].Name != "filename" || arguments[1].Name != "funcname") return true;
            if (functionGlob is not null && !FileSystemName.MatchesSimpleExpression(functionGlob, e.String(1), ignoreCase: false)) return false;
            if (fileGlob is not null && !FileSystemName.MatchesSimpleExpression(fileGlob, e.String(0), ignoreCase: false)) return false;
            return true;
        }
    }
}
