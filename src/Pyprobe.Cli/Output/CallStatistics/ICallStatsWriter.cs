using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Output.CallStatistics;

/// <summary>
/// Call statistics, the output of calls and top (when not drawn on a terminal): per-function rows already
/// filtered, sorted and cut. One implementation per output format.
/// </summary>
internal interface ICallStatsWriter
{
    /// <summary>calls: the rows of one report; <paramref name="interval"/> (from, to since start) for --interval, else null.</summary>
    void Calls(IReadOnlyList<FunctionStats> rows, (TimeSpan From, TimeSpan To)? interval);

    /// <summary>top: one refresh.</summary>
    void Top(TopFrame frame);
}

/// <summary>What every call-statistics writer needs: where to write, whether to show self time and pids, and whether only counts were taken (<c>calls --count</c>).</summary>
internal sealed record CallStatsContext(EventBuffer Output, bool ShowSelf, bool ShowPid, bool CountsOnly);

/// <summary>The writer of a format, from its descriptor (<see cref="OutputFormats"/> lists the formats).</summary>
internal static class CallStatsWriters
{
    public static ICallStatsWriter For(OutputFormat format, EventBuffer output, bool showSelf, bool showPid, bool countsOnly) =>
        (format.CallStatistics ?? throw new ArgumentException($"format {format} has no call statistics", nameof(format)))(new CallStatsContext(output, showSelf, showPid, countsOnly));
}
