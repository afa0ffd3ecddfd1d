using System.Text;
using Pyprobe.Python.Audit;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output.EventStream;

/// <summary>
/// The event stream as text lines for people:
/// <list type="bullet">
/// <item>trace: the seed's bpftrace style (<see cref="TextEventFormatter"/>);</item>
/// <item>flow: the call tree indented by depth (<see cref="FlowTextFormatter"/>);</item>
/// <item>gc: a row per collection (time, [pid,] generation, pause, collected), then a per-generation summary and a pause histogram;</item>
/// <item>imports: like python -X importtime, self and cumulative microseconds and the module indented by nesting, then the slowest modules;</item>
/// <item>audit: <c>HH:MM:SS [pid/tid] name(arg, …)</c> with the arguments as Python would repr them, then the count of each event.</item>
/// </list>
/// </summary>
internal sealed class TextEventStream(EventStreamContext context) : IEventStreamWriter
{
    private readonly EventBuffer _output = context.Output;
    private readonly TextEventFormatter _probes = new(context.Clock, context.Time, context.ManyProcesses);
    private readonly FlowTextFormatter _calls = new(context.Clock, context.Time, context.ManyProcesses);
    private readonly bool _showPid = context.ManyProcesses;
    private bool _header;

    public void Probe(in ProbeEvent e) => _probes.Write(_output, e);

    public void Call(in ProbeEvent e, in CallStacks.Step step) => _calls.Write(_output, e, step);

    public void Collection(in GcCollection c)
    {
        if (!_header)
        {
            Line(_showPid ? "TIME        PID/TID     GEN         PAUSE  COLLECTED" : "TIME      GEN         PAUSE  COLLECTED");
            _header = true;
        }
        var time = EventText.Clock(context.Clock, c.Timestamp);
        Line(_showPid
            ? $"{time}  {$"{c.Pid}/{c.Tid}",-10} {c.Generation,4} {EventText.Duration(c.DurationNs),13} {c.Collected,10}"
            : $"{time}  {c.Generation,3} {EventText.Duration(c.DurationNs),13} {c.Collected,10}");
    }

    public void Summary(GcSummary summary)
    {
        Line("");
        Line($"{summary.Collections} collections");
        Line("GEN  COUNT          TOTAL            MAX  COLLECTED");
        foreach (var s in summary.Generations)
            Line($"{s.Generation,3} {s.Count,6} {EventText.Duration(s.TotalNs),14} {EventText.Duration(s.MaxNs),14} {s.Collected,10}");
        Line("");
        Line("gc pauses:");
        var rows = summary.Pauses.Buckets().ToList();
        if (rows.Count == 0)
        {
            Line("  (none)");
            return;
        }
        var max = rows.Max(r => r.Count);
        Line($"  {"us",21} : count    distribution");
        foreach (var (low, high, count) in rows)
        {
            var stars = (int)Math.Round(40.0 * count / max);
            Line($"  {low,10} -> {high,-7} : {count,-8} |{new string('*', stars),-40}|");
        }
    }

    public void ModuleLoaded(ModuleLoad m)
    {
        if (!_header)
        {
            Line((_showPid ? "PID/TID     " : "") + " SELF [us] | CUMULATIVE [us] | MODULE");
            _header = true;
        }
        var pid = _showPid ? $"{$"{m.Pid}/{m.Tid}",-11} " : "";
        Line($"{pid}{Us(m.SelfNs),10} | {Us(m.DurationNs),15} | {new string(' ', 2 * m.Depth)}{m.Module}{(m.Found ? "" : " (not found)")}");
    }

    public void Summary(ImportSummary summary)
    {
        Line("");
        Line($"{summary.Modules} modules loaded ({summary.NotFound} not found); slowest:");
        Line((_showPid ? "    PID " : "") + "   CUMULATIVE          SELF  MODULE");
        foreach (var m in summary.Slowest)
            Line($"{(_showPid ? $"{m.Pid,7} " : "")}{EventText.Duration(m.DurationNs),13} {EventText.Duration(m.SelfNs),13}  {m.Module}{(m.Found ? "" : " (not found)")}{(m.Parent is null ? "" : $" (imported by {m.Parent})")}");
    }

    public void Audit(AuditEvent e)
    {
        var line = new StringBuilder(EventText.Clock(context.Clock, e.Timestamp)).Append(' ');
        if (_showPid) line.Append('[').Append(e.Pid).Append('/').Append(e.Tid).Append("] ");
        line.Append(e.Name);
        if (e.ArgumentCount >= 0)
        {
            line.Append('(');
            for (var i = 0; i < e.Arguments.Count; i++)
            {
                if (i > 0) line.Append(", ");
                AuditRepr.Repr(line, e.Arguments[i]);
            }
            if (e.ArgumentCount > e.Arguments.Count) line.Append(e.Arguments.Count > 0 ? ", " : "").Append("...");
            line.Append(')');
        }
        Line(line.ToString());
    }

    public void Summary(AuditCounts counts)
    {
        Line("");
        Line($"{counts.Events} audit events");
        Line("   COUNT  EVENT");
        foreach (var (name, count) in counts.ByCount) Line($"{count,8}  {name}");
    }

    private void Line(string text)
    {
        _output.WriteUtf8(text);
        _output.Write((byte)'\n');
    }

    private static string Us(ulong ns) => (ns / 1000).ToString(CultureInfo.InvariantCulture);
}
