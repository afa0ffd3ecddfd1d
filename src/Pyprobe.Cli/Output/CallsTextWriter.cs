using System.Text;
using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Output;

/// <summary>
/// The calls table: numbers first, right-aligned, each duration with its unit; the function last so long
/// names and paths never push columns around.
/// <code>
///  CALLS     TOTAL      MEAN       MIN       MAX       P50       P90       P99  FUNCTION
///   8361   25.3 ms   3.03 µs    620 ns   25.3 ms    1.02 µs   4.10 µs   1.53 ms  fib (t.py:1)
/// </code>
/// A count followed by * has calls without a time; a note under the table says why.
/// </summary>
internal static class CallsTextWriter
{
    public static string Render(IReadOnlyList<FunctionStats> rows, bool showSelf, bool showPid)
    {
        if (rows.Count == 0) return "no calls seen\n";
        var headers = new List<string>();
        if (showPid) headers.Add("PID");
        headers.Add("CALLS");
        headers.Add("TOTAL");
        if (showSelf) headers.Add("SELF");
        headers.AddRange(["MEAN", "MIN", "MAX", "P50", "P90", "P99"]);
        var table = new List<string[]>(rows.Count);
        foreach (var f in rows)
        {
            var cells = new List<string>(headers.Count);
            if (showPid) cells.Add(f.Pid.ToString(CultureInfo.InvariantCulture));
            cells.Add(f.Count.ToString(CultureInfo.InvariantCulture) + (f.UntimedCount > 0 ? "*" : ""));
            cells.Add(CallsDuration.Format(f.TotalNs));
            if (showSelf) cells.Add(CallsDuration.Format(f.SelfNs));
            cells.Add(CallsDuration.Format(f.MeanNs));
            cells.Add(CallsDuration.Format(f.MinNs));
            cells.Add(CallsDuration.Format(f.MaxNs));
            cells.Add(CallsDuration.Format(f.P50Ns));
            cells.Add(CallsDuration.Format(f.P90Ns));
            cells.Add(CallsDuration.Format(f.P99Ns));
            table.Add([.. cells]);
        }
        var widths = new int[headers.Count];
        for (var c = 0; c < widths.Length; c++)
            widths[c] = Math.Max(headers[c].Length, table.Max(r => r[c].Length));

        var text = new StringBuilder();
        for (var c = 0; c < headers.Count; c++) text.Append(headers[c].PadLeft(widths[c] + (c == 0 ? 0 : 2)));
        text.Append("  FUNCTION\n");
        for (var r = 0; r < rows.Count; r++)
        {
            for (var c = 0; c < headers.Count; c++) text.Append(table[r][c].PadLeft(widths[c] + (c == 0 ? 0 : 2)));
            text.Append("  ").Append(Location(rows[r])).Append('\n');
        }
        foreach (var group in rows.Where(f => f.UntimedCount > 0).GroupBy(f => f.UntimedReason ?? "unknown"))
        {
            var untimed = group.Aggregate(0UL, (s, f) => s + f.UntimedCount);
            var all = group.Aggregate(0UL, (s, f) => s + f.Count);
            text.Append(CultureInfo.InvariantCulture, $"* {untimed} of {all} calls have no time: {group.Key}\n");
        }
        return text.ToString();
    }

    /// <summary>
    /// calls --count: the count and the function, nothing else (no time was taken, so there is no column of dashes and no
    /// footnote saying so). A first line shows where a target gave one (functions from _PyEval_EvalFrameDefault).
    /// </summary>
    public static string RenderCounts(IReadOnlyList<FunctionStats> rows, bool showPid)
    {
        if (rows.Count == 0) return "no calls seen\n";
        var countWidth = Math.Max("CALLS".Length, rows.Max(f => Digits(f.Count)));
        var pidWidth = showPid ? Math.Max("PID".Length, rows.Max(f => Digits((ulong)f.Pid))) : 0;
        var text = new StringBuilder();
        if (showPid) text.Append("PID".PadLeft(pidWidth)).Append("  ");
        text.Append("CALLS".PadLeft(countWidth)).Append("  FUNCTION\n");
        foreach (var f in rows)
        {
            if (showPid) text.Append(f.Pid.ToString(CultureInfo.InvariantCulture).PadLeft(pidWidth)).Append("  ");
            text.Append(f.Count.ToString(CultureInfo.InvariantCulture).PadLeft(countWidth)).Append("  ").Append(Location(f)).Append('\n');
        }
        return text.ToString();
    }

    private static int Digits(ulong n) => n.ToString(CultureInfo.InvariantCulture).Length;

    /// <summary>"fib (t.py:1)", or "fib (t.py)" when the first line is unknown (only returns were seen).</summary>
    public static string Location(FunctionStats f) =>
        f.Lineno is int line ? $"{f.Funcname} ({f.Filename}:{line.ToString(CultureInfo.InvariantCulture)})" : $"{f.Funcname} ({f.Filename})";
}
