using System.Globalization;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output;

/// <summary>
/// pyprobe imports output, in the spirit of python -X importtime: text rows as modules finish loading
/// (self and cumulative microseconds, the module indented by nesting, "(not found)" for a failed find),
/// then the slowest modules. JSON: one object per module load, then one <c>{"summary":"imports",…}</c> line.
/// </summary>
internal sealed class ImportsWriter(TextWriter output, bool json, bool showPid, int slowest)
{
    private readonly List<ModuleLoad> _loads = [];
    private bool _header;

    public void Write(ModuleLoad m)
    {
        _loads.Add(m);
        if (json)
        {
            EventText.JsonLine(output, j =>
            {
                j.WriteNumber("ts", m.Timestamp);
                j.WriteNumber("pid", m.Pid);
                j.WriteNumber("tid", m.Tid);
                j.WriteString("module", m.Module);
                j.WriteBoolean("found", m.Found);
                j.WriteNumber("duration_ns", m.DurationNs);
                j.WriteNumber("self_ns", m.SelfNs);
                j.WriteNumber("depth", m.Depth);
                if (m.Parent is null) j.WriteNull("parent");
                else j.WriteString("parent", m.Parent);
            });
            return;
        }
        if (!_header)
        {
            output.WriteLine((showPid ? "PID/TID     " : "") + " SELF [us] | CUMULATIVE [us] | MODULE");
            _header = true;
        }
        var pid = showPid ? $"{$"{m.Pid}/{m.Tid}",-11} " : "";
        output.WriteLine($"{pid}{Us(m.SelfNs),10} | {Us(m.DurationNs),15} | {new string(' ', 2 * m.Depth)}{m.Module}{(m.Found ? "" : " (not found)")}");
    }

    public void WriteSummary()
    {
        var top = _loads.OrderByDescending(m => m.DurationNs).Take(slowest).ToList();
        if (json)
        {
            EventText.JsonLine(output, j =>
            {
                j.WriteString("summary", "imports");
                j.WriteNumber("modules", _loads.Count);
                j.WriteNumber("not_found", _loads.Count(m => !m.Found));
                j.WriteStartArray("slowest");
                foreach (var m in top)
                {
                    j.WriteStartObject();
                    j.WriteNumber("pid", m.Pid);
                    j.WriteString("module", m.Module);
                    j.WriteBoolean("found", m.Found);
                    j.WriteNumber("duration_ns", m.DurationNs);
                    j.WriteNumber("self_ns", m.SelfNs);
                    if (m.Parent is null) j.WriteNull("parent");
                    else j.WriteString("parent", m.Parent);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
            });
            return;
        }
        output.WriteLine();
        output.WriteLine($"{_loads.Count} modules loaded ({_loads.Count(m => !m.Found)} not found); slowest:");
        output.WriteLine((showPid ? "    PID " : "") + "   CUMULATIVE          SELF  MODULE");
        foreach (var m in top)
            output.WriteLine($"{(showPid ? $"{m.Pid,7} " : "")}{EventText.Duration(m.DurationNs),13} {EventText.Duration(m.SelfNs),13}  {m.Module}{(m.Found ? "" : " (not found)")}{(m.Parent is null ? "" : $" (imported by {m.Parent})")}");
    }

    private static string Us(ulong ns) => (ns / 1000).ToString(CultureInfo.InvariantCulture);
}
