using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Pyprobe.Cli.Output;

/// <summary>One refresh of a sampling top: the functions with the most samples in the last interval.</summary>
/// <param name="Mode">Why top samples and at what rate, as the heading says it.</param>
/// <param name="Rows">Already cut to the rows shown.</param>
/// <param name="Samples">Samples with a Python stack in the interval (the share denominator).</param>
/// <param name="HeldGil">Of <paramref name="Samples"/>, those whose thread held the GIL; null where some process's version does not tell.</param>
/// <param name="Kind">What a row is: a function, or an asyncio task (<c>top --tasks</c>).</param>
internal sealed record SampledTopFrame(string Title, string Mode, IReadOnlyList<FunctionShare> Rows, TimeSpan Interval, long Samples, int Functions, long? HeldGil,
    SampledTopRows Kind = SampledTopRows.Functions);

/// <summary>What the rows of a sampling top are.</summary>
internal enum SampledTopRows
{
    Functions,
    /// <summary>Asyncio tasks: %OWN the samples taken in the task itself, %TOTAL in it or in a task it awaits.</summary>
    Tasks,
}

/// <summary>
/// The screen of pyprobe top in sampling mode, like py-spy top: %OWN is the share of samples in which the
/// function itself was running, %TOTAL the share in which it was anywhere on the stack. %GIL is, of the samples in which the
/// function itself ran, the share whose thread held the GIL: Python code shows 100%, a function whose time goes to C code
/// that released it (hashing, compression, I/O in a thread) less; the heading gives the same for all samples, as py-spy's
/// "GIL:" does.
/// </summary>
internal static class SampledTopView
{
    public static IRenderable Render(SampledTopFrame frame)
    {
        var heading = new Markup(
            $"[bold]pyprobe top[/]  {Markup.Escape(frame.Title)}  {DateTime.Now:HH:mm:ss}  [yellow]{Markup.Escape(frame.Mode)}[/]  " +
            $"last {frame.Interval.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s: [bold]{frame.Samples.ToString(CultureInfo.InvariantCulture)}[/] samples, GIL held in {Markup.Escape(Share(frame.HeldGil, frame.Samples))}  [dim]Ctrl-C to quit[/]");
        var table = new Table { Border = TableBorder.Simple, ShowHeaders = true };
        foreach (var column in new[] { "%OWN", "%TOTAL", "OWN", "TOTAL", "%GIL" }) table.AddColumn(new TableColumn(column).RightAligned());
        table.AddColumn(new TableColumn(RowHeading(frame)));
        foreach (var row in frame.Rows)
            table.AddRow(Cells(frame, row).Select(c => (IRenderable)new Text(c)).ToArray());
        var parts = new List<IRenderable> { heading, table };
        if (frame.Rows.Count == 0) parts.Add(new Markup(frame.Kind == SampledTopRows.Tasks ? "[dim]no samples in an asyncio task in this interval[/]" : "[dim]no Python samples in this interval[/]"));
        return new Rows(parts);
    }

    /// <summary>The same frame as plain text, for a stdout that is not a terminal.</summary>
    public static string RenderPlain(SampledTopFrame frame)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"{DateTime.Now:HH:mm:ss} pyprobe top {frame.Title} ({frame.Mode}): last {frame.Interval.TotalSeconds:0.00} s, {frame.Samples} samples of {frame.Functions} {(frame.Kind == SampledTopRows.Tasks ? "tasks" : "functions")}, GIL held in {Share(frame.HeldGil, frame.Samples)}\n");
        text.Append(CultureInfo.InvariantCulture, $"{"%OWN",7} {"%TOTAL",7} {"OWN",7} {"TOTAL",7} {"%GIL",7}  {RowHeading(frame)}\n");
        foreach (var row in frame.Rows)
        {
            var c = Cells(frame, row);
            text.Append(CultureInfo.InvariantCulture, $"{c[0],7} {c[1],7} {c[2],7} {c[3],7} {c[4],7}  {c[5]}\n");
        }
        return text.Append('\n').ToString();
    }

    private static string RowHeading(SampledTopFrame frame) => frame.Kind == SampledTopRows.Tasks ? "TASK" : "FUNCTION";

    /// <summary><paramref name="part"/> of <paramref name="whole"/> as a percentage; "-" when unknown or of nothing.</summary>
    private static string Share(long? part, long whole) =>
        part is not long p || whole == 0 ? "-" : (100.0 * p / whole).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    private static string[] Cells(SampledTopFrame frame, FunctionShare row)
    {
        string Percent(long n) => frame.Samples == 0 ? "-" : (100.0 * n / frame.Samples).ToString("0.0", CultureInfo.InvariantCulture) + "%";
        return [Percent(row.Own), Percent(row.Total), row.Own.ToString(CultureInfo.InvariantCulture), row.Total.ToString(CultureInfo.InvariantCulture),
            Share(frame.HeldGil is null ? null : row.OwnHeldGil, row.Own),
            row.File.Length == 0 ? row.Function
                : row.IsNative ? $"{row.Function} ({row.File})"
                : string.Create(CultureInfo.InvariantCulture, $"{row.Function} ({row.File}:{row.FirstLine})")];
    }
}
