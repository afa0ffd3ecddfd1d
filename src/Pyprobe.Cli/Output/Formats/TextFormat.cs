using Pyprobe.Cli.Output.CallStatistics;
using Pyprobe.Cli.Output.EventStream;

namespace Pyprobe.Cli.Output.Formats;

/// <summary>Text for people, the default: every kind of output has one.</summary>
internal static class TextFormat
{
    public static readonly OutputFormat Format = new()
    {
        Name = "text",
        EventStream = context => new TextEventStream(context),
        CallStatistics = context => new CallStatsText(context.Output, context.ShowSelf, context.ShowPid, context.CountsOnly),
        Rates = output => new StatTextWriter(output),
        Document = true,
    };
}
