using System.Text.Json;
using Pyprobe.Python.Audit;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output.EventStream;

/// <summary>
/// The event stream as JSON lines, one object per event:
/// <list type="bullet">
/// <item>trace: <c>{"ts","pid","tid","probe", fields…}</c> (<see cref="JsonEventFormatter"/>);</item>
/// <item>flow: <c>{"ts","pid","tid","event","depth","filename","funcname","lineno"[,"duration_ns"]}</c> (<see cref="FlowJsonFormatter"/>);</item>
/// <item>gc: <c>{"ts","pid","tid","generation","duration_ns","collected"}</c>, then one <c>{"summary":"gc",…}</c> line;</item>
/// <item>imports: <c>{"ts","pid","tid","module","found","duration_ns","self_ns","depth","parent"}</c>, then one <c>{"summary":"imports",…}</c> line;</item>
/// <item>audit: <c>{"ts","pid","tid","event","nargs","args":[{"type",…}]}</c>, then one <c>{"summary":"audit","counts":{…}}</c> line.</item>
/// </list>
/// ts is CLOCK_MONOTONIC nanoseconds.
/// </summary>
internal sealed class JsonEventStream(EventStreamContext context) : IEventStreamWriter
{
    private readonly EventBuffer _output = context.Output;
    private readonly JsonEventFormatter _probes = new();
    private readonly FlowJsonFormatter _calls = new();

    public void Probe(in ProbeEvent e) => _probes.Write(_output, e);

    public void Call(in ProbeEvent e, in CallStacks.Step step) => _calls.Write(_output, e, step);

    public void Collection(in GcCollection c)
    {
        var e = c;
        EventText.JsonLine(_output, j =>
        {
            Origin(j, e.Timestamp, e.Pid, e.Tid);
            j.WriteNumber("generation", e.Generation);
            j.WriteNumber("duration_ns", e.DurationNs);
            j.WriteNumber("collected", e.Collected);
        });
    }

    public void Summary(GcSummary summary) => EventText.JsonLine(_output, j =>
    {
        j.WriteString("summary", "gc");
        j.WriteNumber("collections", summary.Collections);
        j.WriteStartArray("generations");
        foreach (var s in summary.Generations)
        {
            j.WriteStartObject();
            j.WriteNumber("generation", s.Generation);
            j.WriteNumber("count", s.Count);
            j.WriteNumber("total_ns", s.TotalNs);
            j.WriteNumber("max_ns", s.MaxNs);
            j.WriteNumber("collected", s.Collected);
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteStartArray("pause_histogram");
        foreach (var (low, high, count) in summary.Pauses.Buckets())
        {
            j.WriteStartObject();
            j.WriteNumber("low_us", low);
            j.WriteNumber("high_us", high);
            j.WriteNumber("count", count);
            j.WriteEndObject();
        }
        j.WriteEndArray();
    });

    public void ModuleLoaded(ModuleLoad m) => EventText.JsonLine(_output, j =>
    {
        Origin(j, m.Timestamp, m.Pid, m.Tid);
        Load(j, m, withDepth: true);
    });

    public void Summary(ImportSummary summary) => EventText.JsonLine(_output, j =>
    {
        j.WriteString("summary", "imports");
        j.WriteNumber("modules", summary.Modules);
        j.WriteNumber("not_found", summary.NotFound);
        j.WriteStartArray("slowest");
        foreach (var m in summary.Slowest)
        {
            j.WriteStartObject();
            j.WriteNumber("pid", m.Pid);
            Load(j, m, withDepth: false);
            j.WriteEndObject();
        }
        j.WriteEndArray();
    });

    public void Audit(AuditEvent e) => EventText.JsonLine(_output, j =>
    {
        Origin(j, e.Timestamp, e.Pid, e.Tid);
        j.WriteString("event", e.Name);
        if (e.NameTruncated) j.WriteBoolean("event_truncated", true);
        if (e.ArgumentCount >= 0)
        {
            j.WriteNumber("nargs", e.ArgumentCount);
            j.WriteStartArray("args");
            foreach (var a in e.Arguments) AuditRepr.WriteJson(j, a);
            j.WriteEndArray();
        }
    });

    public void Summary(AuditCounts counts) => EventText.JsonLine(_output, j =>
    {
        j.WriteString("summary", "audit");
        j.WriteNumber("events", counts.Events);
        j.WriteStartObject("counts");
        foreach (var (name, count) in counts.ByCount) j.WriteNumber(name, count);
        j.WriteEndObject();
    });

    /// <summary>When and where: the first fields of every event line.</summary>
    private static void Origin(Utf8JsonWriter j, ulong timestamp, int pid, int tid)
    {
        j.WriteNumber("ts", timestamp);
        j.WriteNumber("pid", pid);
        j.WriteNumber("tid", tid);
    }

    /// <summary>A module load's fields, in the event line and (without the depth) in the summary's slowest list.</summary>
    private static void Load(Utf8JsonWriter j, ModuleLoad m, bool withDepth)
    {
        j.WriteString("module", m.Module);
        j.WriteBoolean("found", m.Found);
        j.WriteNumber("duration_ns", m.DurationNs);
        j.WriteNumber("self_ns", m.SelfNs);
        if (withDepth) j.WriteNumber("depth", m.Depth);
        if (m.Parent is null) j.WriteNull("parent");
        else j.WriteString("parent", m.Parent);
    }
}
