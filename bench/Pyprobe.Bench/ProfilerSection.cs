namespace Pyprobe.Bench;

/// <summary>
/// The profiler comparison: split.py (hot()/cold() ≈ 75/25) on Debian's 3.15 and a pyenv 3.13, under pyprobe record,
/// the 3.15 sampler, austin and an empty bpftrace profile:hz program, at 99 Hz, 1 kHz and 10 kHz.
/// </summary>
internal static class ProfilerSection
{
    public const string Title = "Profiler: pyprobe record against CPython 3.15's sampler, austin and bpftrace profile:hz";
    private static readonly int[] Rates = [99, 1000, 10_000];

    public static void Run(Bench bench, Report report, Py? p315, bool quick)
    {
        var started = DateTime.UtcNow;
        var load0 = File.ReadAllText("/proc/loadavg").Split(' ').Take(3);
        var targets = new List<ProfTarget>();
        if (p315 is not null) targets.Add(new ProfTarget($"Debian {p315.FullVersion}", p315.Command, p315.Env, true, false));
        else Bench.Log("profiler: Python 3.15 is not in the cache; the 3.15 sampler is skipped");
        var pyenv = PyenvPython("3.13");
        if (pyenv is not null) targets.Add(new ProfTarget($"pyenv {Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(pyenv)))}", [pyenv], null, false, true));
        else Bench.Log("profiler: no pyenv 3.13 in ~/.pyenv/versions; austin is skipped");
        var austin = File.Exists(ProfilerCases.AustinLauncher) ? Program.Sh(ProfilerCases.AustinLauncher, "--version").Out.Split('\n')[0].Trim() : null;
        if (austin is null) Bench.Log("profiler: austin is not in the cache (scripts/fetch-austin.sh); its rows are skipped");
        var sampler315 = p315 is null ? null : $"{p315.FullVersion} `-m profiling.sampling attach`";
        var seconds = quick ? 1.0 : 1.5;

        var sections = new List<(ProfTarget Target, Dictionary<ProfSide, List<ProfRun>> Runs)>();
        using (var stats = BpfStatsSwitch.Enable())
        {
            foreach (var target in targets)
            {
                var sides = new List<ProfSide> { new(Profiler.None, 0) };
                foreach (var hz in Rates)
                {
                    sides.Add(new(Profiler.Pyprobe, hz));
                    if (hz <= 1000) sides.Add(new(Profiler.PyprobeNative, hz));
                    if (hz == 1000) sides.Add(new(Profiler.PyprobeKernel, hz));
                    if (target.Is315) sides.Add(new(Profiler.Sampler315, hz));
                    if (target.AustinReads && austin is not null) sides.Add(new(Profiler.Austin, hz));
                    sides.Add(new(Profiler.Bpftrace, hz));
                }
                var calibration = ProfilerCases.RunOnce(bench, target, new ProfSide(Profiler.None, 0), 100, p315);
                var iterations = Math.Max(50, (int)(100 * seconds / calibration.Wall));
                Bench.Log($"profiler {target.Name}: {iterations} iterations ≈ {seconds:0.0} s of work");
                var runs = sides.ToDictionary(s => s, _ => new List<ProfRun>());
                var baselines = new List<double>();
                for (var rep = 0; rep < bench.Reps; rep++)
                {
                    var order = rep % 2 == 0 ? sides : Enumerable.Reverse(sides).ToList();
                    foreach (var side in order)
                    {
                        try
                        {
                            var run = ProfilerCases.RunOnce(bench, target, side, iterations, p315);
                            runs[side].Add(run);
                            Bench.Log($"profiler {target.Name} rep {rep + 1}/{bench.Reps} {side.Label}: {run.Wall:0.000} s, target cpu {run.TargetCpu:0.000} s, tool cpu {run.ToolCpu * 1000:0.0} ms, bpf {run.BpfNs / 1e6:0.0} ms / {run.BpfRuns} runs, rss {run.ToolRssKb} kB, hot {run.HotShare:0.000} (true {run.TrueShare:0.000}), samples {run.Samples}{(run.Note is null ? "" : $" ({run.Note})")}");
                        }
                        catch (Exception e)
                        {
                            Bench.Log($"profiler {target.Name} rep {rep + 1} {side.Label} failed: {e.Message}");
                        }
                    }
                }
                sections.Add((target, runs));
            }
        }

        const string bareScript = "profile:hz:HZ { }";
        var austinText = austin is null ? "not available" : $"{austin} (Debian trixie's package, unpacked by `scripts/fetch-austin.sh`)";
        var quickText = quick ? " (--quick: a smoke run)" : "";
        var bpftraceVersion = Program.Sh("bpftrace", "--version").Out;
        var load1 = File.ReadAllText("/proc/loadavg").Split(' ').Take(3);
        report.Section(Title,
            $"""
            The workload (`bench/workloads/split.py`) runs a fixed number of iterations, each calling `hot()` (3·U rounds of an arithmetic loop)
            and `cold()` (U rounds of the same loop), about {seconds:0.0} s in all, and times the work itself (`perf_counter`; CPU with `process_time`);
            it also measures the true split with `thread_time` around each call. Each profiler attaches to the waiting workload first
            (pyprobe: its `Attached` line; bpftrace: `Attaching` + {bench.BpftraceSettle} ms; the 3.15 sampler and austin print nothing when ready: 200 ms after either is first seen asleep between samples or reading the target's /proc files, so the 3.15 sampler's start-up, over a second of importing on this machine, is not in the window),
            then the work starts. Every side runs {bench.Reps} times, the order reversed every other repetition.

            - **slowdown**: the workload's own time for its work against the no-profiler runs (median of the ratios to each repetition's baseline); **target CPU**: the same with its CPU time.
            - **profiler CPU**: the profiler process's on-CPU time (user + kernel, all threads, `/proc/PID/task/*/schedstat`) during the work, as % of one CPU.
            - **BPF**: the run time of the profiler's BPF programs (`run_time_ns` from their fdinfo, with `kernel.bpf_stats_enabled` on for the run and restored after).
              A perf-event program runs in the interrupt of whatever task was on the CPU, so this time is charged to the target (and to other processes), not to the profiler: it is its own column, and **total** = profiler CPU + BPF.
            - **peak RSS**: the profiler's VmHWM. **samples/s**: samples in the profile per CPU second of the workload's timed work (a CPU-clock sampler at HZ should show about HZ; the start and end outside the work add a little).
            - **hot share**: `hot()`'s share of the samples through `hot()` or `cold()`; **truth** the workload's own `thread_time` split; **error** = |share − truth| in percentage points.
              With n samples a share p has a standard error of √(p(1−p)/n): about 7 pp for 40 samples, 1.4 pp for 1,000. pyprobe samples the CPU clock, so it takes HZ samples per CPU second of the target;
              the 3.15 sampler samples on wall-clock ticks and in `--mode cpu` keeps those where /proc/PID/task/TID/stat says R, which includes waiting for a CPU, so on a loaded machine it takes more.

            pyprobe: `pyprobe record -p PID -r HZ --format collapsed` (CPU clock, per-CPU perf events); with `--native` (99 Hz and 1 kHz) each sample
            also copies the thread's registers and up to 16 KiB of its stack, unwound in user space. 3.15 sampler: `python3.15 -m profiling.sampling attach -r HZ --mode cpu --collapsed`
            (it reads only 3.15). austin: {austinText}, `austin -s -i 1e6/HZ us` (-s: CPU samples only);
            it reads CPython ≤ 3.13, and it found nothing to sample in Debian's 3.13, which runs through its own libc's loader (the process's executable is `ld-linux`), so it runs against pyenv's 3.13 here.
            bookworm's austin (1.0.1) predates 3.11. bpftrace: `{bareScript}` (every CPU, empty body): the kernel's bare sampling cost.

            Run: {started:yyyy-MM-dd HH:mm} UTC, {(DateTime.UtcNow - started).TotalMinutes:0.0} min, load {string.Join(" ", load0)} at the start, {string.Join(" ", load1)} at the end, {bench.Reps} repetitions{quickText}; {bpftraceVersion}.
            """);

        var headlines = new List<string>();
        foreach (var (target, runs) in sections)
        {
            report.Text($"### {target.Name}");
            var baseline = runs.First(kv => kv.Key.Tool == Profiler.None).Value;
            report.Table(["side", "work s", "slowdown", "target CPU", "profiler CPU", "BPF (ns per run)", "total", "peak RSS", "samples/s", "hot share (truth)", "error"],
                runs.Select(kv => Row(kv.Key, kv.Value, baseline)));
            var noise = Resolution(baseline);
            report.Text($"Resolution of this run: the no-profiler runs alone spread {noise.Wall:0}% in time and {noise.Cpu:0}% in CPU (max/min − 1 over {baseline.Count} runs), and an empty bpftrace program shows slowdowns of the same size: " +
                "a slowdown smaller than that is not resolved here; the BPF column is the cost the kernel measured directly.");
            WhereTimeGoes(report, runs);
            var pp = runs.FirstOrDefault(kv => kv.Key is { Tool: Profiler.Pyprobe, Hz: 1000 }).Value;
            if (pp is { Count: > 0 })
            {
                var total = Stats.Median(pp.Select(Total));
                var slow = Stats.Median(Slowdowns(pp, baseline));
                var slowCpu = Stats.Median(Slowdowns(pp, baseline, r => r.TargetCpu));
                var samplerErr = runs.FirstOrDefault(kv => kv.Key is { Tool: Profiler.Sampler315, Hz: 1000 }).Value is { Count: > 0 } s ? Stats.Median(s.Where(r => r.HotShare is not null).Select(Error)) : double.NaN;
                var bare = runs.FirstOrDefault(kv => kv.Key is { Tool: Profiler.Bpftrace, Hz: 1000 }).Value is { Count: > 0 } b ? Stats.Median(Slowdowns(b, baseline)) : double.NaN;
                var nativeRuns = runs.FirstOrDefault(kv => kv.Key is { Tool: Profiler.PyprobeNative, Hz: 1000 }).Value;
                var nativeText = nativeRuns is { Count: > 0 } ? $"; with --native {Stats.Median(nativeRuns.Select(Total)):0.00}% of one CPU in total, {Stats.Median(nativeRuns.Where(r => r.BpfRuns > 0).Select(r => r.BpfNs!.Value / r.BpfRuns!.Value)):0} ns a BPF run against {Stats.Median(pp.Where(r => r.BpfRuns > 0).Select(r => r.BpfNs!.Value / r.BpfRuns!.Value)):0} without" : "";
                var kernelRuns = runs.FirstOrDefault(kv => kv.Key is { Tool: Profiler.PyprobeKernel, Hz: 1000 }).Value;
                if (kernelRuns is { Count: > 0 })
                    nativeText += $"; with --kernel {Stats.Median(kernelRuns.Select(Total)):0.00}% of one CPU in total, {Stats.Median(kernelRuns.Where(r => r.BpfRuns > 0).Select(r => r.BpfNs!.Value / r.BpfRuns!.Value)):0} ns a BPF run";
                headlines.Add($"{target.Name}: pyprobe at 1 kHz {total:0.00}% of one CPU in total ({Stats.Median(pp.Select(r => Pct(r.ToolCpu!.Value * 1e9, r))):0.00}% in pyprobe, {Stats.Median(pp.Select(r => Pct(r.BpfNs ?? 0, r))):0.00}% in BPF), slowdown {slow:+0.0;-0.0}% in time and {slowCpu:+0.0;-0.0}% in the target's CPU (not resolved: the baseline alone spreads {noise.Wall:0}% / {noise.Cpu:0}%, the empty bpftrace program shows {bare:+0.0;-0.0}%), split error {Stats.Median(pp.Where(r => r.HotShare is not null).Select(Error)):0.0} pp" +
                    (double.IsNaN(samplerErr) ? "" : $" (3.15 sampler: {Stats.Median(runs.First(kv => kv.Key is { Tool: Profiler.Sampler315, Hz: 1000 }).Value.Select(r => Pct(r.ToolCpu!.Value * 1e9, r))):0.0}% of one CPU, error {samplerErr:0.0} pp)") + nativeText);
            }
        }
        if (headlines.Count > 0)
            report.Headline($"**Profiler** (goal at 1 kHz: total ≤ 2% of one CPU, slowdown ≤ 1%, split as accurate as the 3.15 sampler): {string.Join("; ", headlines)}.");
    }

    /// <summary>
    /// pyprobe's user-space CPU as a fixed part plus a part per sample (a line through its 99 Hz and 10 kHz medians), and
    /// its BPF program's cost per run: where its total goes.
    /// </summary>
    private static void WhereTimeGoes(Report report, Dictionary<ProfSide, List<ProfRun>> runs)
    {
        List<ProfRun> At(int hz) => runs.FirstOrDefault(kv => kv.Key.Tool == Profiler.Pyprobe && kv.Key.Hz == hz).Value ?? [];
        var (low, high, mid) = (At(Rates[0]), At(Rates[^1]), At(1000));
        if (low.Count == 0 || high.Count == 0 || mid.Count == 0) return;
        double CpuPerSecond(List<ProfRun> l) => Stats.Median(l.Select(r => (r.ToolCpu ?? 0) / r.Wall));
        double SamplesPerSecond(List<ProfRun> l) => Stats.Median(l.Select(r => (r.Samples ?? 0) / r.Wall));
        var perSample = (CpuPerSecond(high) - CpuPerSecond(low)) / Math.Max(1, SamplesPerSecond(high) - SamplesPerSecond(low));
        var floor = CpuPerSecond(low) - perSample * SamplesPerSecond(low);
        var bpfRuns = Stats.Median(mid.Select(r => (r.BpfRuns ?? 0) / r.Wall));
        var bpfNs = Stats.Median(mid.Where(r => r.BpfRuns > 0).Select(r => r.BpfNs!.Value / r.BpfRuns!.Value));
        report.Text($"Where pyprobe's time goes: user space ≈ {100 * floor:0.00}% of a CPU whatever the rate (it wakes every {Pyprobe.Python.Tracing.TraceSession.PollInterval} ms to drain the ring and looks for exited processes twice a second) " +
            $"+ {perSample * 1e6:0.0} µs per sample taken in the target (ring record decoded, stack counted; names resolved once per code object); " +
            $"in the kernel, at 1 kHz the perf-event program ran {bpfRuns:0} times a second (every CPU ticks at HZ; ticks on other processes end at the pid check) for {bpfNs:0} ns a run on average.");
    }

    /// <summary>How far the no-profiler runs spread (max/min − 1, %): the smallest slowdown the run can tell.</summary>
    private static (double Wall, double Cpu) Resolution(List<ProfRun> baseline) =>
        baseline.Count < 2 ? (double.NaN, double.NaN)
            : (100 * (baseline.Max(r => r.Wall) / baseline.Min(r => r.Wall) - 1), 100 * (baseline.Max(r => r.TargetCpu) / baseline.Min(r => r.TargetCpu) - 1));

    private static double Pct(double ns, ProfRun run) => 100 * ns / (run.Wall * 1e9);
    private static double Total(ProfRun r) => Pct((r.ToolCpu ?? 0) * 1e9 + (r.BpfNs ?? 0), r);
    private static double Error(ProfRun r) => 100 * Math.Abs(r.HotShare!.Value - r.TrueShare);

    private static IEnumerable<double> Slowdowns(List<ProfRun> runs, List<ProfRun> baseline, Func<ProfRun, double>? of = null)
    {
        of ??= r => r.Wall;
        var b = Stats.Median(baseline.Select(of));
        return runs.Select(r => 100 * (of(r) / b - 1));
    }

    private static IReadOnlyList<string> Row(ProfSide side, List<ProfRun> runs, List<ProfRun> baseline)
    {
        if (runs.Count == 0) return [side.Label, "failed", "", "", "", "", "", "", "", "", ""];
        var isTool = side.Tool != Profiler.None;
        var hasBpf = side.Tool is Profiler.Pyprobe or Profiler.PyprobeNative or Profiler.PyprobeKernel or Profiler.Bpftrace;
        var shares = runs.Where(r => r.HotShare is not null).ToList();
        var notes = runs.Where(r => r.Note is not null).Select(r => r.Note!).Distinct().ToList();
        return [
            side.Label + (notes.Count > 0 ? $" ({string.Join("; ", notes)})" : ""),
            Stats.Spread(runs.Select(r => r.Wall), "0.000"),
            isTool ? Stats.Spread(Slowdowns(runs, baseline), "+0.0;-0.0") + "%" : "–",
            isTool ? Stats.Spread(Slowdowns(runs, baseline, r => r.TargetCpu), "+0.0;-0.0") + "%" : "–",
            isTool ? Stats.Spread(runs.Select(r => Pct((r.ToolCpu ?? 0) * 1e9, r)), "0.00") + "%" : "–",
            hasBpf ? $"{Stats.Spread(runs.Select(r => Pct(r.BpfNs ?? 0, r)), "0.00")}% ({Stats.Median(runs.Where(r => r.BpfRuns > 0).Select(r => r.BpfNs!.Value / r.BpfRuns!.Value)):0})" : "–",
            isTool ? Stats.Spread(runs.Select(Total), "0.00") + "%" : "–",
            isTool ? Stats.Spread(runs.Where(r => r.ToolRssKb is not null).Select(r => r.ToolRssKb!.Value / 1024.0), "0.0") + " MB" : "–",
            shares.Count > 0 ? Stats.Spread(runs.Select(r => (r.Samples ?? 0) / r.TargetCpu), "0") : "–",
            shares.Count > 0 ? $"{Stats.Spread(shares.Select(r => 100 * r.HotShare!.Value), "0.0")}% ({Stats.Median(shares.Select(r => 100 * r.TrueShare)):0.0}%)" : $"– ({Stats.Median(runs.Select(r => 100 * r.TrueShare)):0.0}%)",
            shares.Count > 0 ? Stats.Spread(shares.Select(Error), "0.0") + " pp" : "–",
        ];
    }

    /// <summary>The newest pyenv build of a version (HOME/.pyenv/versions/X.Y.*/bin/pythonX.Y).</summary>
    internal static string? PyenvPython(string version)
    {
        var root = Path.Combine(Environment.GetEnvironmentVariable("PYENV_ROOT") ?? Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".pyenv"), "versions");
        if (!Directory.Exists(root)) return null;
        return Directory.GetDirectories(root, version + ".*")
            .Select(d => Path.Combine(d, "bin", "python" + version)).Where(File.Exists)
            .OrderByDescending(p => Version.TryParse(Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(p))), out var v) ? v : new Version())
            .FirstOrDefault();
    }
}

/// <summary>kernel.bpf_stats_enabled on for the profiler section, restored to what it was afterwards.</summary>
internal sealed class BpfStatsSwitch : IDisposable
{
    private const string Path = "/proc/sys/kernel/bpf_stats_enabled";
    private readonly string _before;

    private BpfStatsSwitch(string before) => _before = before;

    public static BpfStatsSwitch Enable()
    {
        var before = File.ReadAllText(Path).Trim();
        File.WriteAllText(Path, "1");
        return new BpfStatsSwitch(before);
    }

    public void Dispose() => File.WriteAllText(Path, _before);
}
