using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Output.CallStatistics;

/// <summary>
/// Call statistics as tables for people (<see cref="CallsTextWriter"/>): calls prints one table per report, with
/// a heading and a blank line between intervals; top's plain output one headed table per refresh.
/// </summary>
internal sealed class CallStatsText(EventBuffer output, bool showSelf, bool showPid, bool countsOnly) : ICallStatsWriter
{
    private bool _first = true;

    public void Calls(IReadOnlyList<FunctionStats> rows, (TimeSpan From, TimeSpan To)? interval)
    {
        if (!_first) output.Write((byte)'\n');
        _first = false;
        if (interval is var (from, to)) output.WriteUtf8($"{DateTime.Now:HH:mm:ss} calls in the last {(to - from).TotalSeconds:0.00} s\n");
        output.WriteUtf8(countsOnly ? CallsTextWriter.RenderCounts(rows, showPid) : CallsTextWriter.Render(rows, showSelf, showPid));
        output.Flush();
    }

    public void Top(TopFrame frame)
    {
        output.WriteUtf8(TopView.RenderPlain(frame));
        output.Flush();
    }
}
