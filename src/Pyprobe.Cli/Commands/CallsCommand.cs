using Pyprobe.Cli.Commands.Calls;
using Pyprobe.Cli.Output.CallStatistics;
using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe calls (-p PID... | --all [PATH] | -- CMD ARGS...): per-function call count, total, mean, min, max and
/// p50/p90/p99, aggregated in the kernel (per-thread stacks there make recursion and generators right; only
/// summaries cross into user space). bcc's ucalls overwrote the entry time of recursive calls and had no
/// percentiles; this does neither.
/// </summary>
internal static class CallsCommand
{
    public static Command Create()
    {
        var options = new CallOptions(CallSort.Total, "Show only the first N functions (default: all).");
        var interval = new Option<double?>("--interval") { Description = "Print (and reset) the statistics every SECONDS instead of once at the end.", HelpName = "SECONDS" };
        var self = new Option<bool>("--self") { Description = "Add a SELF column: time in the function itself, without the Python functions it called (C functions it called count as its own)." };

        var command = new Command("calls",
            "Count and time the calls of every Python function, aggregated in the kernel: calls, total, mean, min, max, p50/p90/p99 " +
            "(from a log-linear histogram). Durations are wall time from entry to return, or to a yield for a generator step. " +
            "--count counts calls alone, at about half the cost or less. " +
            "On Python 3.11 pyprobe turns on function__entry (about 10x slower on call-heavy code); with --no-entry-gate or --count calls are counted from returns, without times. " +
            "Without function probes (3.12-3.14, or a build without them) calls come from a uprobe on _PyEval_EvalFrameDefault; from 3.11 pyprobe sets the eval-frame hook for it (-p only; --no-write refuses).");
        options.Target.AddTo(command);
        foreach (var option in new Option[] { options.Sort, options.Top, interval, self, options.Count, options.Function, options.File, options.Duration, options.NoEntryGate, options.NoWrite }) command.Options.Add(option);
        options.Output.AddTo(command);

        command.SetAction(result =>
        {
            var every = result.GetValue(interval);
            var settings = options.Read(result, every);
            var showSelf = result.GetValue(self);
            var countOnly = !settings.Timed;
            var rows = settings.Rows;
            if (countOnly && showSelf) throw new UsageException("--self needs times, which --count does not take");
            if (rows.Sort == CallSort.Self && !showSelf) throw new UsageException("--sort self needs --self");
            var format = options.Output.ReadFormat(result);
            Privileges.RequireTracing("calls");

            // Opened before attaching: the report is written at the end, and a file that cannot be written must not
            // cost the run (nor touch the target) first.
            using var sink = options.Output.Open(result, result.InvocationConfiguration.Output);
            using var run = CallsRun.Start(settings, result.InvocationConfiguration.Error);
            // Made at the first report: a followed command may have started more Pythons by then (a pid column).
            ICallStatsWriter? writer = null;
            ulong total = 0;

            void Report(CallStats stats, (TimeSpan, TimeSpan)? interval)
            {
                foreach (var f in stats.Functions) total += f.Count;
                writer ??= CallStatsWriters.For(format, sink, showSelf, run.Targets.ManyProcesses, countsOnly: countOnly);
                writer.Calls(rows.Apply(stats.Functions), interval);
            }

            CallStats last;
            if (every is { } period)
            {
                var step = TimeSpan.FromSeconds(period);
                var next = step;
                var since = TimeSpan.Zero;
                while (run.WaitUntil(next))
                {
                    Report(run.Session.TakeInterval(), (since, run.Elapsed));
                    since = run.Elapsed;
                    next += step;
                    if (next < run.Elapsed) next = run.Elapsed + step;
                }
                last = CallsRun.Finish(run, interval: true);
                Report(last, (since, run.Elapsed));
            }
            else
            {
                run.WaitUntil(TimeSpan.MaxValue);
                last = CallsRun.Finish(run, interval: false);
                Report(last, null);
            }
            if (!countOnly && last.Functions.FirstOrDefault(f => f.UntimedCount > 0 && f.TimedCount == 0)?.UntimedReason is { } why && !CallsRun.AllTimed(run.Session))
                result.InvocationConfiguration.Error.WriteLine($"pyprobe: note: times are missing: {why}");
            return run.Complete(CallsRun.Report(run, last, total));
        });
        return command;
    }
}
