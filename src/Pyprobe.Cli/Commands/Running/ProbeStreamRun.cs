using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Cli.Targets;

namespace Pyprobe.Cli.Commands.Running;

/// <summary>What a command such as gc or imports writes: a record for some events, a summary at the end.</summary>
/// <param name="Show">Given the format's writer, what to do with each event.</param>
/// <param name="Summarize">Writes the end-of-run summary.</param>
internal sealed record ProbeStreamHandling(Func<IEventStreamWriter, ProbeEventHandler> Show, Action<IEventStreamWriter> Summarize);

/// <summary>
/// The life of a command that turns the events of a few probes into its own records (gc, imports): attach the
/// event program to the targets that have every probe, hand each event to the command, write its summary at
/// the end, and report delivered and lost events.
/// </summary>
internal static class ProbeStreamRun
{
    /// <param name="what">The command, for "…, which gc needs".</param>
    public static int Run(ParseResult result, TargetSelection selection, EventSettings events, OutputOptions output,
        IReadOnlyList<string> probes, string what, ProbeStreamHandling handling)
    {
        var stderr = result.InvocationConfiguration.Error;
        EventBuffer? opened = null;
        using var run = TracingRun<TraceSession>.Start(TargetSelector.Resolve(selection), targets =>
        {
            var usable = RequiredProbes.Usable(targets.Targets, probes, what, stderr);
            var session = TraceSession.Attach(usable, probes.Select(p => PythonProbeCatalog.Find(p)!).ToList(), new TraceSessionOptions(events.RingBytes, Tids: events.Tids, EntryGate: false));
            // The output is opened once the probes are live, and its writer raised with this reader before the Attached line.
            try
            {
                opened = output.Open(result, result.InvocationConfiguration.Output);
            }
            catch
            {
                session.Dispose();
                throw;
            }
            var governor = ConsumerPriorities.Start(events.Priority, opened.WriterThreadId, session, stderr);
            return new Attachment<TraceSession>(session, string.Join(", ", probes), TargetText.Where(usable), session.AttachProcess, governor);
        }, events.Duration, stderr);
        var session = run.Session;
        using var sink = opened!;
        var writer = EventStreamWriters.For(output.ReadFormat(result), new EventStreamContext(sink, new EventClock(), TimeFormat.Seconds, run.Targets.ManyProcesses));
        var each = handling.Show(writer);
        long delivered = 0;
        ProbeEventHandler handler = (in ProbeEvent e) =>
        {
            delivered++;
            each(e);
        };
        run.Stream(() => session.Drain(handler), sink.Flush, sink.AfterPoll);
        handling.Summarize(writer);
        writer.End(new EventStreamEnd(EventClock.MonotonicNowNs(), session.Lost));
        sink.Flush();
        return run.Complete(run.EventReport(delivered, session.Lost));
    }
}
