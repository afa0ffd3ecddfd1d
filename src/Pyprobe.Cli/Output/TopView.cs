using Pyprobe.Python.Analysis;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Pyprobe.Cli.Output;

/// <summary>One refresh of pyprobe top: the hottest functions of the last interval.</summary>
/// <param name="Title">Who is traced (pid, interpreter).</param>
/// <param name="Rows">Already filtered, sorted and cut.</param>
/// <param name="Interval">Wall time the rows cover (the %OWN denominator).</param>
/// <param name="Calls">Calls of every function in the interval (shown or not).</param>
/// <param name="Functions">Functions called in the interval.</param>
/// <param name="UntimedReason">Why times are missing, or null.</param>
/// <param name="CountsOnly">top --count: the rows have counts alone.</param>
internal sealed record TopFrame(string Title, IReadOnlyList<FunctionStats> Rows, TimeSpan Interval, ulong Calls, int Functions, string? UntimedReason, bool ShowPid, bool CountsOnly);

/// <summary>
/// The terminal screen of pyprobe top, drawn with Spectre.Console: a heading line and a table like py-spy top's,
/// with exact counts instead of samples. %OWN is the function's own time (without the Python functions it called)
/// over the interval's wall time: it adds up to about 100% per busy thread. Counts alone (top --count) show calls and
/// calls per second.
/// </summary>
internal static class TopView
{
    public static IRenderable Render(TopFrame frame)
    {
        var heading = new Markup(
            $"[bold]pyprobe top[/]  {Markup.Escape(frame.Title)}  {DateTime.Now:HH:mm:ss}  " +
            $"last {frame.Interval.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s: " +
            $"[bold]{frame.Calls.ToString(CultureInfo.InvariantCulture)}[/] calls of {frame.Functions.ToString(CultureInfo.InvariantCulture)} functions  [dim]Ctrl-C to quit[/]");
        var (headers, cells) = frame.CountsOnly ? CountColumns(frame.Interval.TotalSeconds) : TimeColumns(frame.Interval.TotalSeconds);
        var table = new Table { Border = TableBorder.Simple, ShowHeaders = true };
        if (frame.ShowPid) table.AddColumn(new TableColumn("PID").RightAligned());
        foreach (var header in headers) table.AddColumn(new TableColumn(header).RightAligned());
        table.AddColumn(new TableColumn("FUNCTION"));
        foreach (var f in frame.Rows)
        {
            var row = new List<IRenderable>();
            if (frame.ShowPid) row.Add(new Text(f.Pid.ToString(CultureInfo.InvariantCulture)));
            row.AddRange(cells(f).Select(text => new Text(text)));
            row.Add(new Text(CallsTextWriter.Location(f), new Style(decoration: Decoration.None)));
            table.AddRow(row);
        }
        var parts = new List<IRenderable> { heading, table };
        if (frame.Rows.Count == 0) parts.Add(new Markup("[dim]no calls in this interval[/]"));
        if (frame.UntimedReason is { } why) parts.Add(new Text($"* no times: {why}"));
        return new Rows(parts);
    }

    /// <summary>Times: own time as a share of the interval and in itself, total, calls (* where some have no time), mean, max.</summary>
    private static (string[] Headers, Func<FunctionStats, string[]> Cells) TimeColumns(double seconds) =>
        (["%OWN", "OWN", "TOTAL", "CALLS", "MEAN", "MAX"], f =>
        [
            f.SelfNs is { } self && seconds > 0 ? (self / 1e9 / seconds * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-",
            CallsDuration.Format(f.SelfNs),
            CallsDuration.Format(f.TotalNs),
            f.Count.ToString(CultureInfo.InvariantCulture) + (f.UntimedCount > 0 ? "*" : ""),
            CallsDuration.Format(f.MeanNs),
            CallsDuration.Format(f.MaxNs),
        ]);

    /// <summary>Counts alone (top --count): calls and calls per second of the interval.</summary>
    private static (string[] Headers, Func<FunctionStats, string[]> Cells) CountColumns(double seconds) =>
        (["CALLS", "CALLS/S"], f =>
        [
            f.Count.ToString(CultureInfo.InvariantCulture),
            seconds > 0 ? (f.Count / seconds).ToString("0", CultureInfo.InvariantCulture) : "-",
        ]);

    /// <summary>The same frame as plain text, for a stdout that is not a terminal.</summary>
    public static string RenderPlain(TopFrame frame)
    {
        var heading = $"{DateTime.Now:HH:mm:ss} pyprobe top {frame.Title}: last {frame.Interval.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s, {frame.Calls} calls of {frame.Functions} functions\n";
        return heading + (frame.CountsOnly ? CallsTextWriter.RenderCounts(frame.Rows, frame.ShowPid) : CallsTextWriter.Render(frame.Rows, showSelf: true, frame.ShowPid)) + "\n";
    }
}
