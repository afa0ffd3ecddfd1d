using Pyprobe.Cli.Output.CallStatistics;
using Pyprobe.Cli.Output.EventStream;

namespace Pyprobe.Cli.Output.Formats;

/// <summary>JSON for programs: one object per line for streams, one document for list and dump.</summary>
internal static class JsonFormat
{
    public static readonly OutputFormat Format = new()
    {
        Name = "json",
        EventStream = context => new JsonEventStream(context),
        CallStatistics = context => new CallStatsJson(context.Output, context.ShowSelf, context.ShowPid, context.CountsOnly),
        Rates = output => new StatJsonWriter(output),
        Document = true,
    };
}
