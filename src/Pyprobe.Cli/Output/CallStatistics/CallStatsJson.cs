using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Output.CallStatistics;

/// <summary>Call statistics as JSON: one array of function objects per report or refresh, on one line (<see cref="CallsJsonWriter"/>).</summary>
internal sealed class CallStatsJson(EventBuffer output, bool showSelf, bool showPid, bool countsOnly) : ICallStatsWriter
{
    public void Calls(IReadOnlyList<FunctionStats> rows, (TimeSpan From, TimeSpan To)? interval)
    {
        output.WriteUtf8(CallsJsonWriter.Render(rows, showSelf, showPid, countsOnly));
        output.Flush();
    }

    public void Top(TopFrame frame)
    {
        output.WriteUtf8(CallsJsonWriter.Render(frame.Rows, showSelf: true, frame.ShowPid, frame.CountsOnly));
        output.Flush();
    }
}
