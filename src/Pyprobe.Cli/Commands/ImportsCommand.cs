using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe imports (-p PID... | --all [PATH] | -- CMD ARGS...): python -X importtime for a running process.
/// Every module loaded (CPython's import probes fire only for modules not yet in sys.modules, on the C import
/// path), its load time with and without the modules it imported, its nesting and whether it was found; at the
/// end the slowest modules.
/// </summary>
internal static class ImportsCommand
{
    public static Command Create()
    {
        var top = new Option<int>("--top") { Description = "How many of the slowest modules the summary lists (default 10).", HelpName = "N", DefaultValueFactory = _ => 10 };
        return ProbeStreamCommand.Create("imports",
            "Show each module loaded with its load time (self and cumulative), nesting and found flag, like python -X importtime for a running process; then the slowest modules.",
            ImportTracker.Probes, [top], result =>
            {
                var slowest = result.GetValue(top);
                if (slowest <= 0) throw new UsageException("--top must be positive");
                var tracker = new ImportTracker();
                var summary = new ImportSummary(slowest);
                return new ProbeStreamHandling(writer => (in ProbeEvent e) =>
                {
                    if (tracker.Apply(e) is not { } load) return;
                    summary.Add(load);
                    writer.ModuleLoaded(load);
                }, writer => writer.Summary(summary));
            });
    }
}
