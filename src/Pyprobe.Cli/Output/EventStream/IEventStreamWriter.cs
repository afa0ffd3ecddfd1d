using Pyprobe.Python.Audit;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output.EventStream;

/// <summary>
/// The event stream, the output of trace, flow, gc, imports and audit: what happened, in order, then what the
/// command sums up at the end. One implementation per output format (text, JSON, …); a command calls the
/// methods of its own kind of event. A probe event lives in the ring's memory only during the call.
/// </summary>
internal interface IEventStreamWriter
{
    /// <summary>trace: one probe hit with its arguments.</summary>
    void Probe(in ProbeEvent e);

    /// <summary>flow: a function entry or return with its place in the thread's call tree.</summary>
    void Call(in ProbeEvent e, in CallStacks.Step step);

    /// <summary>gc: one collection.</summary>
    void Collection(in GcCollection c);

    /// <summary>imports: one module finished loading.</summary>
    void ModuleLoaded(ModuleLoad m);

    /// <summary>audit: one audit event with its decoded arguments.</summary>
    void Audit(AuditEvent e);

    void Summary(GcSummary summary);

    void Summary(ImportSummary summary);

    void Summary(AuditCounts counts);

    /// <summary>
    /// The stream is over: after the last event and summary, before the output is flushed for the last time. A
    /// format that keeps state (open calls, an open array) closes it here; line formats have nothing to do.
    /// </summary>
    void End(in EventStreamEnd end) { }
}

/// <summary>When tracing stopped (CLOCK_MONOTONIC ns, the events' clock) and how many events the kernel lost.</summary>
internal readonly record struct EventStreamEnd(ulong MonotonicNs, ulong Lost);

/// <summary>What every event-stream writer needs: where to write, how to show time, whether to show pids.</summary>
/// <param name="Time">The time column of text lines (trace and flow let the user choose).</param>
internal sealed record EventStreamContext(EventBuffer Output, EventClock Clock, TimeFormat Time, bool ManyProcesses);

/// <summary>The writer of a format, from its descriptor (<see cref="OutputFormats"/> lists the formats).</summary>
internal static class EventStreamWriters
{
    public static IEventStreamWriter For(OutputFormat format, EventStreamContext context) =>
        (format.EventStream ?? throw new ArgumentException($"format {format} has no event stream", nameof(format)))(context);
}
