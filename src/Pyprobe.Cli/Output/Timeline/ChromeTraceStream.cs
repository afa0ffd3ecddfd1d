using System.Text;
using System.Text.Json;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Python.Audit;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output.Timeline;

/// <summary>
/// <c>--format chrome</c>: the event stream as a timeline in the Chrome Trace Event Format, which Perfetto,
/// speedscope and chrome://tracing open (<see cref="TraceEventWriter"/> for the file's shape).
/// <list type="bullet">
/// <item>a call is one complete slice (<c>"ph":"X"</c>, name = function, args file and def line) on its thread,
/// written when it returns, so children come before their parents in the file and viewers sort by time;</item>
/// <item>a gc pause is a slice <c>gc</c> (args generation, collected), a module load a slice <c>import NAME</c>
/// (args found), on the thread that ran them, nested with the calls around and inside them;</item>
/// <item>audit events and trace's other probes are instants (<c>"ph":"i"</c>) with their arguments;</item>
/// <item>an entry that never returned (a 3.15 generator's creation) and a return without an entry (the call began
/// before tracing) are instants marked <c>no_return</c> / <c>no_entry</c>;</item>
/// <item>a call still open when tracing stops is closed there and marked <c>"unfinished":true</c>; lost events are a
/// global instant at the end;</item>
/// <item>each process and thread is named by metadata events (<c>process_name</c>, <c>thread_name</c>).</item>
/// </list>
/// Nothing is held but the open calls. Timestamps are the events' own (CLOCK_MONOTONIC), as in <c>--format json</c>.
/// </summary>
internal sealed class ChromeTraceStream : IEventStreamWriter
{
    public static readonly OutputFormat Format = new()
    {
        Name = "chrome",
        Summary = "a timeline in the Chrome trace event format, for Perfetto, speedscope and chrome://tracing",
        EventStream = context => new ChromeTraceStream(context.Output, ThreadNames.FromProcesses()),
        PairsCalls = true,
    };

    private readonly TraceEventWriter _events;
    private readonly ThreadNames _names;
    private readonly OpenCalls _open = new();
    private readonly StringBuilder _text = new();
    private CallStacks? _tree;
    private GcPairing? _gc;
    private ImportTracker? _imports;
    private ulong _lastNs;

    public ChromeTraceStream(EventBuffer output, ThreadNames names)
    {
        _events = new TraceEventWriter(output);
        _names = names;
    }

    /// <summary>trace: calls, gc and imports become slices as their pairs complete; any other probe is an instant.</summary>
    public void Probe(in ProbeEvent e)
    {
        switch (e.Name)
        {
            case "function__entry" or "function__return":
                Call(e, (_tree ??= new CallStacks()).Apply(e));
                return;
            case "gc__start" or "gc__done":
                Seen(e.Pid, e.Tid, e.Timestamp);
                if ((_gc ??= new GcPairing()).Apply(e) is { } collection) Collection(collection);
                return;
            case "import__find__load__start" or "import__find__load__done":
                Seen(e.Pid, e.Tid, e.Timestamp);
                if ((_imports ??= new ImportTracker()).Apply(e) is { } load) ModuleLoaded(load);
                return;
        }
        Seen(e.Pid, e.Tid, e.Timestamp);
        var json = _events.Instant(e.Pid, e.Tid, e.Name, "probe", e.Timestamp);
        json.WriteStartObject("args");
        var arguments = e.Probe.Probe.Arguments;
        for (var i = 0; i < arguments.Count; i++)
        {
            switch (arguments[i].Kind)
            {
                case Pyprobe.Python.Probes.ProbeArgumentKind.CString:
                    json.WriteString(arguments[i].Name, e.String(i));
                    break;
                case Pyprobe.Python.Probes.ProbeArgumentKind.Boolean:
                    json.WriteBoolean(arguments[i].Name, e.Value(i) != 0);
                    break;
                case Pyprobe.Python.Probes.ProbeArgumentKind.Pointer:
                    break; // an address in the target means nothing outside it
                default:
                    json.WriteNumber(arguments[i].Name, e.Value(i));
                    break;
            }
        }
        json.WriteEndObject();
        _events.End();
    }

    public void Call(in ProbeEvent e, in CallStacks.Step step)
    {
        // A paired return needs nothing from the event but its time: the slice takes the names its entry kept.
        var paired = !step.IsEntry && step.DurationNs is not null;
        Call(e.Pid, e.Tid, e.Timestamp, step, paired ? null : e.String(0), paired ? null : e.String(1), e.Value(2));
    }

    /// <summary>
    /// One function entry or return, by its place in the thread's <see cref="CallStacks"/>; the file and function
    /// names are needed for an entry and an unpaired return only.
    /// </summary>
    public void Call(int pid, int tid, ulong ns, in CallStacks.Step step, string? filename, string? funcname, long line)
    {
        Seen(pid, tid, ns);
        if (step.IsEntry)
        {
            foreach (var call in _open.Enter(pid, tid, step.Depth, new OpenCall(ns, filename ?? "", funcname ?? "", line)))
                NoReturn(pid, tid, call);
            return;
        }
        var (ended, abandoned) = step.DurationNs is null ? (null, []) : _open.Return(pid, tid, step.Depth);
        foreach (var call in abandoned) NoReturn(pid, tid, call);
        if (ended is { } c)
        {
            CallSlice(pid, tid, c, ns, unfinished: false);
            return;
        }
        var json = _events.Instant(pid, tid, funcname ?? "", "python", ns);
        json.WriteStartObject("args");
        json.WriteString("file", filename ?? "");
        json.WriteNumber("line", line);
        json.WriteBoolean("no_entry", true);
        json.WriteEndObject();
        _events.End();
    }

    public void Collection(in GcCollection c)
    {
        Seen(c.Pid, c.Tid, c.Timestamp + c.DurationNs);
        var json = _events.Slice(c.Pid, c.Tid, "gc", "gc", c.Timestamp, c.DurationNs);
        json.WriteStartObject("args");
        json.WriteNumber("generation", c.Generation);
        json.WriteNumber("collected", c.Collected);
        json.WriteEndObject();
        _events.End();
    }

    public void ModuleLoaded(ModuleLoad m)
    {
        Seen(m.Pid, m.Tid, m.Timestamp + m.DurationNs);
        var json = _events.Slice(m.Pid, m.Tid, "import " + m.Module, "import", m.Timestamp, m.DurationNs);
        json.WriteStartObject("args");
        json.WriteBoolean("found", m.Found);
        json.WriteEndObject();
        _events.End();
    }

    public void Audit(AuditEvent e)
    {
        Seen(e.Pid, e.Tid, e.Timestamp);
        var json = _events.Instant(e.Pid, e.Tid, e.Name, "audit", e.Timestamp);
        json.WriteStartObject("args");
        if (e.ArgumentCount >= 0)
        {
            _text.Clear();
            for (var i = 0; i < e.Arguments.Count; i++)
            {
                if (i > 0) _text.Append(", ");
                AuditRepr.Repr(_text, e.Arguments[i]);
            }
            if (e.ArgumentCount > e.Arguments.Count) _text.Append(e.Arguments.Count > 0 ? ", " : "").Append("...");
            json.WriteString("args", _text.ToString());
        }
        json.WriteEndObject();
        _events.End();
    }

    // The summaries add up events the timeline already has, one slice or instant each.
    public void Summary(GcSummary summary) { }

    public void Summary(ImportSummary summary) { }

    public void Summary(AuditCounts counts) { }

    /// <summary>Closes the calls still open at the end of tracing (or at the last event, if later), marks lost events, ends the array.</summary>
    public void End(in EventStreamEnd end)
    {
        var at = Math.Max(end.MonotonicNs, _lastNs);
        foreach (var (pid, tid, call) in _open.TakeAll()) CallSlice(pid, tid, call, at, unfinished: true);
        if (end.Lost > 0)
        {
            var json = _events.Instant(0, 0, $"{end.Lost} events lost", "pyprobe", at, global: true);
            json.WriteStartObject("args");
            json.WriteNumber("lost", end.Lost);
            json.WriteEndObject();
            _events.End();
        }
        _events.Close();
        _names.Dispose();
    }

    private void CallSlice(int pid, int tid, OpenCall call, ulong endNs, bool unfinished)
    {
        var json = _events.Slice(pid, tid, call.Funcname, "python", call.StartNs, endNs >= call.StartNs ? endNs - call.StartNs : 0);
        json.WriteStartObject("args");
        json.WriteString("file", call.Filename);
        json.WriteNumber("line", call.Line);
        if (unfinished) json.WriteBoolean("unfinished", true);
        json.WriteEndObject();
        _events.End();
    }

    private void NoReturn(int pid, int tid, OpenCall call)
    {
        var json = _events.Instant(pid, tid, call.Funcname, "python", call.StartNs);
        json.WriteStartObject("args");
        json.WriteString("file", call.Filename);
        json.WriteNumber("line", call.Line);
        json.WriteBoolean("no_return", true);
        json.WriteEndObject();
        _events.End();
    }

    private void Seen(int pid, int tid, ulong ns)
    {
        if (ns > _lastNs) _lastNs = ns;
        _names.Introduce(_events, pid, tid);
    }
}
