using Pyprobe.Python.Stat;

namespace Pyprobe.Cli.Output;

/// <summary>Per-process rates, the output of stat: one call per interval with a row per Python process.</summary>
internal interface IStatWriter
{
    void Write(ulong monotonicNs, IReadOnlyList<StatRow> rows);
}

/// <summary>The writer of a format, from its descriptor (<see cref="OutputFormats"/> lists the formats).</summary>
internal static class StatWriters
{
    public static IStatWriter For(OutputFormat format, EventBuffer output) =>
        (format.Rates ?? throw new ArgumentException($"format {format} has no rates", nameof(format)))(output);
}

/// <summary>stat as text: per interval a heading and one row per Python process (pid, version, calls/s, gc/s, imports/s, audit/s, command line).</summary>
internal sealed class StatTextWriter(EventBuffer output) : IStatWriter
{
    public void Write(ulong monotonicNs, IReadOnlyList<StatRow> rows)
    {
        Line($"{DateTime.Now:HH:mm:ss}  {rows.Count} Python process{(rows.Count == 1 ? "" : "es")}");
        Line($"{"PID",7}  {"VERSION",-9} {"CALLS/s",10} {"GC/s",8} {"IMPORTS/s",10} {"AUDIT/s",9}  COMMAND");
        foreach (var r in rows)
        {
            var command = r.Command.Length > 80 ? r.Command[..77] + "..." : r.Command;
            Line($"{r.Pid,7}  {r.Version,-9} {(r.Calls is { } c ? Fmt(r.PerSecond(c)) : "n/a"),10} {Fmt(r.PerSecond(r.Gc)),8} {Fmt(r.PerSecond(r.Imports)),10} {Fmt(r.PerSecond(r.Audit)),9}  {command}");
        }
        Line("");
        output.Flush();
    }

    private void Line(string text)
    {
        output.WriteUtf8(text);
        output.Write((byte)'\n');
    }

    private static string Fmt(double rate) => rate.ToString("0.0", CultureInfo.InvariantCulture);
}

/// <summary>stat as JSON: one object per process per interval, rates and counts.</summary>
internal sealed class StatJsonWriter(EventBuffer output) : IStatWriter
{
    public void Write(ulong monotonicNs, IReadOnlyList<StatRow> rows)
    {
        foreach (var r in rows)
            EventText.JsonLine(output, j =>
            {
                j.WriteNumber("ts", monotonicNs);
                j.WriteNumber("pid", r.Pid);
                j.WriteString("version", r.Version);
                j.WriteString("command", r.Command);
                j.WriteNumber("interval_s", Math.Round(r.IntervalSeconds, 6));
                if (r.Calls is { } calls) j.WriteNumber("calls_per_s", r.PerSecond(calls));
                else j.WriteNull("calls_per_s");
                j.WriteNumber("gc_per_s", r.PerSecond(r.Gc));
                j.WriteNumber("imports_per_s", r.PerSecond(r.Imports));
                j.WriteNumber("audit_per_s", r.PerSecond(r.Audit));
                if (r.Calls is { } c) j.WriteNumber("calls", c);
                else j.WriteNull("calls");
                j.WriteNumber("gc", r.Gc);
                j.WriteNumber("imports", r.Imports);
                j.WriteNumber("audit", r.Audit);
            });
        output.Flush();
    }
}
