using System.Text.Json;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output;

/// <summary>
/// flow's text lines: time, thread, then the call tree of that thread indented two spaces per level,
/// <c>-&gt; name (file:line)</c> on entry and <c>&lt;- name  20.1 ms</c> on return, the duration in the unit that fits.
/// <code>
/// 16:02:11.481023  4711  -> main (app.py:10)
/// 16:02:11.481030  4711    -> a (app.py:5)
/// 16:02:11.501190  4711    &lt;- a  20.2 ms
/// </code>
/// Every thread has its own stack and depth; the thread column is <c>pid/tid</c> when several processes are traced.
/// </summary>
internal sealed class FlowTextFormatter(EventClock clock, TimeFormat timeFormat, bool manyProcesses)
{
    public void Write(EventBuffer output, in ProbeEvent e, in CallStacks.Step step)
    {
        if (timeFormat != TimeFormat.None)
        {
            var ns = clock.LocalNanosecondOfDay(e.Timestamp);
            var seconds = ns / 1_000_000_000;
            output.WriteAscii(timeFormat == TimeFormat.Micros
                ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:00}:{seconds / 60 % 60:00}:{seconds % 60:00}.{ns / 1000 % 1_000_000:000000} ")
                : string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:00}:{seconds / 60 % 60:00}:{seconds % 60:00} "));
        }
        var thread = manyProcesses
            ? string.Create(CultureInfo.InvariantCulture, $"{e.Pid}/{e.Tid}")
            : e.Tid.ToString(CultureInfo.InvariantCulture);
        output.WriteAscii(thread.PadLeft(manyProcesses ? 13 : 7));
        output.WriteAscii("  ");
        for (var i = 0; i < step.Depth; i++) output.WriteAscii("  ");
        output.WriteAscii(step.IsEntry ? "-> " : "<- ");
        TextEventFormatter.WriteText(output, e.StringBytes(1));
        if (step.IsEntry)
        {
            output.WriteAscii(" (");
            TextEventFormatter.WriteText(output, e.StringBytes(0));
            output.Write((byte)':');
            output.WriteNumber(e.Value(2));
            output.Write((byte)')');
        }
        else if (step.DurationNs is { } ns)
        {
            output.WriteAscii("  ");
            output.WriteUtf8(CallsDuration.Format((double)ns));
        }
        else
        {
            output.WriteAscii("  (no entry seen: it began before tracing, or a 3.15 throw())");
        }
        output.Write((byte)'\n');
    }
}

/// <summary>
/// flow --format json: one object per event and line,
/// <c>{"ts","pid","tid","event":"entry"|"return","depth","filename","funcname","lineno"}</c>, plus "duration_ns" on a
/// return whose entry was seen. ts is CLOCK_MONOTONIC nanoseconds; lineno is the first line of the function's code
/// object (co_firstlineno) on entry and return — a generator's resume too — except where its frame could not be read
/// (then the probe's line: where the activation starts, or the line that returned).
/// </summary>
internal sealed class FlowJsonFormatter
{
    private readonly JsonLines _lines = new(new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    public void Write(EventBuffer output, in ProbeEvent e, in CallStacks.Step step)
    {
        var json = _lines.Begin(output);
        json.WriteNumber("ts", e.Timestamp);
        json.WriteNumber("pid", e.Pid);
        json.WriteNumber("tid", e.Tid);
        json.WriteString("event", step.IsEntry ? "entry" : "return");
        json.WriteNumber("depth", step.Depth);
        WriteName(json, "filename", e.StringBytes(0));
        WriteName(json, "funcname", e.StringBytes(1));
        json.WriteNumber("lineno", e.Value(2));
        if (step.DurationNs is { } ns) json.WriteNumber("duration_ns", ns);
        _lines.End(output);
    }

    private static void WriteName(Utf8JsonWriter json, string name, ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) json.WriteString(name, bytes);
        else json.WriteString(name, System.Text.Encoding.UTF8.GetString(bytes));
    }
}
