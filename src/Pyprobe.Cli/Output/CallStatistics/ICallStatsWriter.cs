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

/// <summary>The writer of each output format: the one place a new format of call statistics is added.</summary>
internal static class CallStatsWriters
{
    public static ICallStatsWriter For(OutputFormat format, EventBuffer output, bool showSelf, bool showPid) => format switch
    {
        OutputFormat.Json => new CallStatsJson(output, showSelf, showPid),
        _ => new CallStatsText(output, showSelf, showPid),
    };
}
