using Pyprobe.Cli.Commands.Calls;
using Pyprobe.Cli.Commands.Top;
using Pyprobe.Cli.Output.CallStatistics;
using Pyprobe.Python.Analysis;
using Spectre.Console;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe top (-p PID... | --all [PATH] | -- CMD ARGS...): a live, refreshing view of the hottest functions
/// (like py-spy top, but exact counts and times aggregated in the kernel instead of samples). On a terminal it
/// uses the alternate screen and restores the terminal on Ctrl-C, SIGTERM and the target's exit; when stdout is
/// not a terminal (or with -o / --format json) it prints plain reports every interval instead.
/// </summary>
internal static class TopCommand
{
    private const int PlainRows = 20;

    public static Command Create()
    {
        var options = new CallOptions(CallSort.Self, $"Show N functions (default: as many as the terminal holds; {PlainRows} in plain output).");
        var interval = new Option<double>("--interval") { Description = "Refresh every SECONDS (default 1); each view shows that interval only.", HelpName = "SECONDS", DefaultValueFactory = _ => 1.0 };
        var sample = new Option<bool>("--sample") { Description = "Sample stacks instead of counting calls (what top does by itself where function events are not available: 3.11+ without function probes, as 3.12-3.14 are, under --all, -- CMD or --no-write)." };
        var rate = SampledRun.RateOption(" when sampling");
        var native = new Option<bool>("--native", "-n")
        {
            Description = "Sample with each stack's C frames (so --sample): the C functions of extension modules, libraries and the interpreter are rows of their own, under the Python lines that call them, as py-spy top --native.",
        };

        var kernel = new Option<bool>("--kernel", "-k")
        {
            Description = "Sample with each stack's C and kernel frames (so --sample and --native): the kernel's functions are rows too, under the system calls that enter them.",
        };

        var tasks = new Option<bool>("--tasks", "-t")
        {
            Description = "Rows are the asyncio tasks, not functions (so --sample): %OWN the samples taken in the task itself, %TOTAL in it or in a task it awaits, as record --tasks roots them.",
        };

        var command = new Command("top",
            "Live view of the hottest Python functions of the target: own time, total time, calls, mean and max per interval, counted in the kernel " +
            "(--count: calls and calls per second alone, at about half the cost or less). " +
            "Ctrl-C quits and restores the terminal. When stdout is not a terminal, prints a plain table every interval.");
        options.Target.AddTo(command);
        foreach (var option in new Option[] { options.Sort, options.Top, interval, options.Count, options.Function, options.File, options.Duration, options.NoEntryGate, options.NoWrite, sample, native, kernel, tasks, rate }) command.Options.Add(option);
        options.Output.AddTo(command);

        command.SetAction(result =>
        {
            var every = result.GetValue(interval);
            var settings = options.Read(result, every);
            var countsOnly = !settings.Timed;
            // Each of these samples the stacks: no counts, and (below) no JSON.
            var sampling = new[] { (sample, "takes samples, not counts"), (native, "samples the stacks, which gives no counts"), (kernel, "samples the stacks, which gives no counts"),
                    (tasks, "samples the stacks, which gives no counts") }
                .Where(o => result.GetValue(o.Item1)).Select(o => (Name: o.Item1.Name, What: o.Item2)).ToList();
            if (countsOnly && sampling.Count > 0)
                throw new UsageException($"{sampling[0].Name} {sampling[0].What}: use one of {sampling[0].Name} and --count");
            var rowsWanted = settings.Rows.Top;
            var format = options.Output.ReadFormat(result);
            var stdout = result.InvocationConfiguration.Output;
            var path = result.GetValue(options.Output.File);
            var live = format == OutputFormat.Text && string.IsNullOrEmpty(path) && StandardOutput.Is(stdout) && !Console.IsOutputRedirected;
            Privileges.RequireTracing("top");
            var hz = SampledRun.ReadRate(result, rate);
            static string NoJsonWhenSampling(string why) => $"top prints text when it samples ({why}); use pyprobe record for a file";
            // Known before -o is opened: a refused command line leaves no empty file behind.
            if (format == OutputFormat.Json && sampling.Count > 0) throw new CliException(NoJsonWhenSampling($"asked for with {sampling[0].Name}"));
            // Plain reports go to -o FILE or stdout; the file is opened before attaching, so that one that cannot be
            // written is said before anything runs.
            using var sink = live ? null : options.Output.Open(result, stdout);
            int Sampled(string why)
            {
                if (format == OutputFormat.Json) throw new CliException(NoJsonWhenSampling(why));
                return SampledTop.Run(new SampledTopSettings(settings.Selection, why, hz, settings.Duration, TimeSpan.FromSeconds(every), rowsWanted, live,
                    result.GetValue(native), result.GetValue(kernel), result.GetValue(tasks)), sink, result.InvocationConfiguration.Error);
            }
            if (result.GetValue(tasks)) return Sampled("asyncio tasks, asked for with --tasks");
            if (result.GetValue(kernel)) return Sampled("with C and kernel frames, asked for with --kernel");
            if (result.GetValue(native)) return Sampled("with C frames, asked for with --native");
            if (result.GetValue(sample)) return Sampled("asked for with --sample");

            TracingRun<CallStatsSession> run;
            try
            {
                run = CallsRun.Start(settings, result.InvocationConfiguration.Error);
            }
            // Counts were asked for: samples are not what the user wants, so the reason stands as the error.
            catch (NoFunctionEventsException e) when (!countsOnly)
            {
                result.InvocationConfiguration.Error.WriteLine($"pyprobe: note: {e.Message}; top samples the stacks instead (shares of samples, not exact counts)");
                return Sampled("no function events here");
            }
            using var owned = run;
            var title = Title(run);
            var showPid = run.Targets.ManyProcesses;
            var step = TimeSpan.FromSeconds(every);
            ulong total = 0;
            var since = TimeSpan.Zero;

            TopFrame Next(CallStats stats, int rows)
            {
                var calls = stats.Functions.Aggregate(0UL, (s, f) => s + f.Count);
                total += calls;
                var shown = settings.Rows with { Top = rows };
                var frame = new TopFrame(title, shown.Apply(stats.Functions), run.Elapsed - since, calls, stats.Functions.Count,
                    CallsRun.AllTimed(run.Session) || countsOnly ? null : CallsRun.UntimedReason(run.Session), showPid, countsOnly);
                since = run.Elapsed;
                return frame;
            }

            CallStats last;
            if (live)
            {
                last = RunLive(run, step, rowsWanted, Next);
            }
            else
            {
                var writer = CallStatsWriters.For(format, sink!, showSelf: true, showPid, countsOnly);
                var next = step;
                while (run.WaitUntil(next))
                {
                    writer.Top(Next(run.Session.TakeInterval(), rowsWanted ?? PlainRows));
                    next = Advance(next, step, run.Elapsed);
                }
                last = CallsRun.Finish(run, interval: true);
                writer.Top(Next(last, rowsWanted ?? PlainRows));
            }
            return run.Complete(CallsRun.Report(run, last, total));
        });
        return command;
    }

    /// <summary>The live table in the alternate screen (<see cref="AlternateScreen"/> gives the terminal back on every exit).</summary>
    private static CallStats RunLive(TracingRun<CallStatsSession> run, TimeSpan step, int? rowsWanted, Func<CallStats, int, TopFrame> next)
    {
        var heading = new Markup($"[bold]pyprobe top[/]  {Markup.Escape(Title(run))}  [dim]first refresh in {step.TotalSeconds:0.#} s; Ctrl-C to quit[/]");
        Func<int> height = () => 0;
        int Rows() => rowsWanted ?? Math.Max(1, height() - 7);
        AlternateScreen.Run(heading, (ctx, terminalHeight) =>
        {
            height = terminalHeight;
            var deadline = step;
            while (run.WaitUntil(deadline))
            {
                ctx.UpdateTarget(TopView.Render(next(run.Session.TakeInterval(), Rows())));
                ctx.Refresh();
                deadline = Advance(deadline, step, run.Elapsed);
            }
        });
        var last = CallsRun.Finish(run, interval: true);
        next(last, Rows());
        return last;
    }

    private static TimeSpan Advance(TimeSpan deadline, TimeSpan step, TimeSpan now)
    {
        deadline += step;
        return deadline < now ? now + step : deadline;
    }

    private static string Title(TracingRun<CallStatsSession> run) => string.Join("; ", run.Targets.Targets.Select(t =>
        (t.AllProcesses ? "every process of " + t.DisplayPath : $"pid {string.Join(", ", t.Pids)}") +
        (t.Version is null ? "" : $" (Python {t.Version})")));
}
