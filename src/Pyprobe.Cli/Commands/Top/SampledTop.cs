using Spectre.Console;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Commands.Top;

/// <summary>How a sampling top was asked for.</summary>
/// <param name="Why">Shown in the heading: "sampling at 99 Hz: ..." says why there are no exact counts.</param>
/// <param name="Native">With each sample's C frames (--native): C functions are rows of their own.</param>
/// <param name="Kernel">With the kernel's frames too (--kernel): kernel functions are rows of their own.</param>
/// <param name="Tasks">Rows are the asyncio tasks the samples were taken in (--tasks), not functions.</param>
internal sealed record SampledTopSettings(TargetSelection Selection, string Why, int Rate, TimeSpan? Duration, TimeSpan Step, int? Rows, bool Live, bool Native = false,
    bool Kernel = false, bool Tasks = false);

/// <summary>
/// pyprobe top where function events are not available (no probes, 3.12–3.14 without the hook) or with --sample:
/// the stack sampler's per-interval shares of each function, drawn like the exact view.
/// </summary>
internal static class SampledTop
{
    private const int PlainRows = 20;

    /// <param name="plain">Where plain reports go (-o FILE or stdout); null for the live view.</param>
    public static int Run(SampledTopSettings settings, EventBuffer? plain, TextWriter stderr)
    {
        var (started, title) = SampledRun.Start(settings.Selection, StackSamplerOptions.FunctionShares(settings.Rate, settings.Native || settings.Kernel, settings.Kernel, settings.Tasks), threadRoots: false, settings.Duration, stderr);
        using var run = started;
        var session = run.Session;
        var mode = $"sampling at {settings.Rate} Hz: {settings.Why}";
        var since = TimeSpan.Zero;
        long total = 0;

        SampledTopFrame Next(int rows)
        {
            var profile = session.TakeInterval(DateTimeOffset.Now, run.Elapsed - since, ProfileMode.Cpu);
            var shares = settings.Tasks ? FunctionShares.TasksOf(profile) : FunctionShares.Of(profile);
            total += profile.TotalSamples;
            var frame = new SampledTopFrame(title, mode, shares.Take(rows).ToList(), run.Elapsed - since, profile.TotalSamples, shares.Count,
                session.GilStateKnown ? profile.Stacks.Sum(s => s.HeldGil) : null, settings.Tasks ? SampledTopRows.Tasks : SampledTopRows.Functions);
            since = run.Elapsed;
            return frame;
        }

        bool WaitFor(TimeSpan deadline)
        {
            // The run's wait wakes for the ring; between deadlines the samples are drained and new processes looked for.
            while (true)
            {
                var going = run.WaitUntil(run.Elapsed + TimeSpan.FromMilliseconds(100) < deadline ? run.Elapsed + TimeSpan.FromMilliseconds(100) : deadline);
                session.PollProcesses();
                session.Drain();
                if (!going) return false;
                if (run.Elapsed >= deadline) return true;
            }
        }

        if (settings.Live) RunLive(settings, Next, WaitFor);
        else
        {
            var next = settings.Step;
            while (WaitFor(next))
            {
                plain!.WriteUtf8(SampledTopView.RenderPlain(Next(settings.Rows ?? PlainRows)));
                plain.Flush();
                next += settings.Step;
            }
        }
        run.Detach();
        while (session.Drain() > 0) { }
        if (!settings.Live)
        {
            plain!.WriteUtf8(SampledTopView.RenderPlain(Next(settings.Rows ?? PlainRows)));
            plain.Flush();
        }
        return run.Complete([$"{run.DetachedAfter}: {total} samples with a Python stack of {session.Pids.Count} process{(session.Pids.Count == 1 ? "" : "es")}"]);
    }

    private static void RunLive(SampledTopSettings settings, Func<int, SampledTopFrame> next, Func<TimeSpan, bool> waitFor)
    {
        var heading = new Markup($"[bold]pyprobe top[/]  [yellow]{Markup.Escape($"sampling at {settings.Rate} Hz: {settings.Why}")}[/]  [dim]first refresh in {settings.Step.TotalSeconds:0.#} s; Ctrl-C to quit[/]");
        AlternateScreen.Run(heading, (ctx, height) =>
        {
            var deadline = settings.Step;
            while (waitFor(deadline))
            {
                ctx.UpdateTarget(SampledTopView.Render(next(settings.Rows ?? Math.Max(1, height() - 7))));
                ctx.Refresh();
                deadline += settings.Step;
            }
        });
    }
}
