using System.Globalization;
using Pyprobe.Python.Stat;

namespace Pyprobe.Cli.Output;

/// <summary>
/// pyprobe stat output. Text: per interval a heading and one row per Python process (pid, version, calls/s,
/// gc/s, imports/s, audit/s, command line). JSON: one object per process per interval.
/// </summary>
internal sealed class StatWriter(TextWriter output, bool json)
{
    public void Write(ulong monotonicNs, IReadOnlyList<StatRow> rows)
    {
        if (json)
        {
            foreach (var r in rows)
                EventText.JsonLine(output, j =>
                {
                    j.WriteNumber("ts", monotonicNs);
                    j.WriteNumber("pid", r.Pid);
                    j.WriteString("version", r.Version);
                    j.WriteString("command", r.Command);
                    j.WriteNumber("interval_s", Math.Round(r.IntervalSeconds, 6));
                    if (r.Calls is { } calls) j.WriteNumber("calls_per_s", Rate(calls, r));
                    else j.WriteNull("calls_per_s");
                    j.WriteNumber("gc_per_s", Rate(r.Gc, r));
                    j.WriteNumber("imports_per_s", Rate(r.Imports, r));
                    j.WriteNumber("audit_per_s", Rate(r.Audit, r));
                    if (r.Calls is { } c) j.WriteNumber("calls", c);
                    else j.WriteNull("calls");
                    j.WriteNumber("gc", r.Gc);
                    j.WriteNumber("imports", r.Imports);
                    j.WriteNumber("audit", r.Audit);
                });
            output.Flush();
            return;
        }
        output.WriteLine($"{DateTime.Now:HH:mm:ss}  {rows.Count} Python process{(rows.Count == 1 ? "" : "es")}");
        output.WriteLine($"{"PID",7}  {"VERSION",-9} {"CALLS/s",10} {"GC/s",8} {"IMPORTS/s",10} {"AUDIT/s",9}  COMMAND");
        foreach (var r in rows)
        {
            var command = r.Command.Length > 80 ? r.Command[..77] + "..." : r.Command;
            output.WriteLine($"{r.Pid,7}  {r.Version,-9} {(r.Calls is { } c ? Fmt(Rate(c, r)) : "n/a"),10} {Fmt(Rate(r.Gc, r)),8} {Fmt(Rate(r.Imports, r)),10} {Fmt(Rate(r.Audit, r)),9}  {command}");
        }
        output.WriteLine();
        output.Flush();
    }

    private static double Rate(ulong count, StatRow r) => r.IntervalSeconds > 0 ? Math.Round(count / r.IntervalSeconds, 1) : 0;

    private static string Fmt(double rate) => rate.ToString("0.0", CultureInfo.InvariantCulture);
}
