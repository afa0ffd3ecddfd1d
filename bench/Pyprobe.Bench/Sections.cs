using System.Globalization;

namespace Pyprobe.Bench;

internal static class Sections
{
    private static readonly Dictionary<string, double> Extras = [];

    private static List<Tool> Tracers(Bench bench, bool withBaselines) =>
        [.. withBaselines ? new[] { Tool.None, Tool.Bare } : [], Tool.BpftraceCount, Tool.BpftracePrintf, Tool.PyprobeTrace, .. bench.HasCalls ? new[] { Tool.PyprobeCalls } : []];

    /// <summary>Every tool, <see cref="Bench.Reps"/> times, the order alternating between repetitions.</summary>
    private static Dictionary<Tool, List<Run>> Matrix(Bench bench, Py py, IReadOnlyList<Tool> tools, IReadOnlyList<string> workloadArgs, string what)
    {
        var runs = tools.ToDictionary(t => t, _ => new List<Run>());
        for (var rep = 0; rep < bench.Reps; rep++)
        {
            var order = rep % 2 == 0 ? tools : tools.Reverse().ToList();
            foreach (var tool in order)
            {
                try
                {
                    var run = Cases.RunOnce(bench, py, tool, workloadArgs);
                    runs[tool].Add(run);
                    Bench.Log($"{what} rep {rep + 1}/{bench.Reps} {tool}: {run.NsPerCall:0} ns/call, {run.Rate / 1e3:0}k calls/s, seen {run.RawSeen?.ToString() ?? "-"} of {run.Calls}, tool lost {run.ToolLost?.ToString() ?? "-"}{(run.Note is null ? "" : $" ({run.Note})")}");
                }
                catch (Exception e)
                {
                    Bench.Log($"{what} rep {rep + 1} {tool} failed: {e.Message}");
                }
            }
        }
        return runs;
    }

    /// <summary>
    /// bpftrace's count covers every Python function entry of the process; the workload makes a few besides
    /// leaf() (work(), thread bodies, interpreter shutdown). pyprobe trace's exact count (delivered − leaf
    /// lines, in runs without loss) measures them; <paramref name="known"/> overrides (50 processes: one work() each).
    /// </summary>
    private static void FixCounts(Dictionary<Tool, List<Run>> runs, string key, double? known = null)
    {
        double extras;
        if (known is { } k) extras = k;
        else
        {
            var measured = runs.GetValueOrDefault(Tool.PyprobeTrace)?.Where(r => r.ToolLost == 0 && r.Delivered is not null && r.Seen is not null)
                .Select(r => (double)(r.Delivered!.Value - r.Seen!.Value)).ToList() ?? [];
            if (measured.Count > 0) Extras[key] = Stats.Median(measured);
            extras = Extras.GetValueOrDefault(key);
        }
        foreach (var run in runs.GetValueOrDefault(Tool.BpftraceCount) ?? [])
            if (run.RawSeen is { } raw) run.Seen = raw - (long)extras;
    }

    private static double MedianNs(Dictionary<Tool, List<Run>> runs, Tool tool) =>
        runs.TryGetValue(tool, out var list) && list.Count > 0 ? Stats.Median(list.Select(r => r.NsPerCall)) : double.NaN;

    private static void OverheadTable(Report report, Dictionary<Tool, List<Run>> runs)
    {
        var none = MedianNs(runs, Tool.None);
        var bare = MedianNs(runs, Tool.Bare) - none;
        report.Table(["case", "ns per call", "added ns per call", "× bare uprobe", "leaf() events seen", "lost (calls − seen)", "lost, as the tool reports it"],
            runs.Select(kv =>
            {
                var (tool, list) = (kv.Key, kv.Value);
                if (list.Count == 0) return (IReadOnlyList<string>)[Cases.Label(tool), "failed", "", "", "", "", ""];
                var added = Stats.Median(list.Select(r => r.NsPerCall)) - none;
                var counted = list.Where(r => r.Seen is not null).ToList();
                return [
                    Cases.Label(tool),
                    Stats.Spread(list.Select(r => r.NsPerCall)),
                    tool == Tool.None ? "–" : added.ToString("0"),
                    tool == Tool.None ? "–" : (added / bare).ToString("0.00") + CallsAgainstBothSites(runs, tool, added, none),
                    counted.Count == 0 ? "–" : Stats.CountSpread(counted.Select(r => (double)r.Seen!.Value)),
                    counted.Count == 0 ? "–" : LostText(counted),
                    list.All(r => r.ToolLost is null) ? "–" : Stats.CountSpread(list.Where(r => r.ToolLost is not null).Select(r => (double)r.ToolLost!.Value)),
                ];
            }));
    }

    /// <summary>For calls, also its cost against the bare program on both of its sites (entry + return).</summary>
    private static string CallsAgainstBothSites(Dictionary<Tool, List<Run>> runs, Tool tool, double added, double none) =>
        tool == Tool.PyprobeCalls && MedianNs(runs, Tool.BareEntryAndReturn) - none is > 0 and var both
            ? $" ({added / both:0.00}× entry + return)"
            : "";

    private static string LostText(List<Run> runs)
    {
        var lost = runs.Select(r => (double)r.Lost!.Value).ToList();
        var pct = runs.Select(r => 100.0 * r.Lost!.Value / Math.Max(1, r.Calls)).ToList();
        return lost.All(l => l == 0) ? "0" : $"{Stats.CountSpread(lost)} = {Stats.Median(pct):0.#}%";
    }

    public static void Overhead(Bench bench, Report report, Py p39, Py? p315)
    {
        report.BehindTopics("Overhead per call");
        report.Section("Overhead on the traced program",
            $"""
            The workload (`bench/workloads/leaf.py`) calls `def leaf(x): return x + 1` {bench.Calls:N0} times in a loop and times
            the loop itself with `time.perf_counter`: ns per call is the traced program's own view. Each tool attaches to the
            `function__entry` probe of the waiting workload first (pyprobe: its `Attached` line; bpftrace: its `Attaching` line
            plus {bench.BpftraceSettle} ms), then the workload is released. "× bare uprobe" is the cost a tool adds per call divided
            by what an empty BPF program (`mov r0, 0; exit`) on the same sites adds: the kernel's uprobe trap, pyprobe's
            physical limit. bpftrace count and pyprobe attach with `-p PID`; the bpftrace printf one-liner runs in the seed's
            system-wide form (no `-p`; the bench runs a private copy of the interpreter, so system-wide means the workload alone). bpftrace's count includes the workload's few other
            function entries (work(), interpreter shutdown), measured exactly by pyprobe trace and subtracted.
            pyprobe calls attaches both function__entry and function__return (two uprobe traps per call), so its row also
            gives its cost against an empty program on both of those sites; `pyprobe calls --count` counts each call at its
            return alone (one trap, no clock read), per function as bpftrace's `@[str(arg0), str(arg1)] = count()` on the same
            probe does (its row: both strings read on every call, up to 64 bytes each, as the map's key).
            """);
        foreach (var py in new[] { p39, p315 }.OfType<Py>())
        {
            // calls attaches function__entry and function__return: its own physical limit is the bare program on both.
            var tools = Tracers(bench, true);
            if (bench.HasCalls) tools.Insert(tools.IndexOf(Tool.Bare) + 1, Tool.BareEntryAndReturn);
            // Counting alone: one probe a call, as bpftrace's count() takes.
            if (bench.HasCallsCount) tools.Insert(tools.IndexOf(Tool.PyprobeCalls) + 1, Tool.PyprobeCallsCount);
            // The same counts from bpftrace: a key of both strings, read on every call.
            tools.Insert(tools.IndexOf(Tool.BpftraceCount) + 1, Tool.BpftraceCountPerFunction);
            // The reader raised for the whole run (the default until 2026-11-30) beside the default, raised only while behind.
            tools.Insert(tools.IndexOf(Tool.PyprobeTrace) + 1, Tool.PyprobeTraceHighPriority);
            tools.Insert(tools.IndexOf(Tool.PyprobeTrace) + 1, Tool.PyprobeTraceRing);
            var runs = Matrix(bench, py, tools, [bench.Calls.ToString()], $"overhead {py.Version}");
            FixCounts(runs, py.Version);
            report.Text($"### CPython {py.FullVersion}, one thread, full speed");
            OverheadTable(report, runs);
            Summaries[$"overhead {py.Version}"] = runs;
        }
        var r39 = Summaries["overhead 3.9"];
        double Added(Tool t) => MedianNs(r39, t) - MedianNs(r39, Tool.None);
        var bare = Added(Tool.Bare);
        report.Headline($"""
            **Headline (CPython {p39.FullVersion}, one thread, {bench.Calls:N0} calls).** Cost per traced call as a multiple of the bare uprobe
            ({bare:0} ns): pyprobe trace {Added(Tool.PyprobeTrace) / bare:0.00}× (through the ring buffer as before: {Added(Tool.PyprobeTraceRing) / bare:0.00}×; with its reader raised throughout, `--priority high`: {Added(Tool.PyprobeTraceHighPriority) / bare:0.00}×){(bench.HasCalls ? $", pyprobe calls {Added(Tool.PyprobeCalls) / bare:0.00}× ({Added(Tool.PyprobeCalls) / Added(Tool.BareEntryAndReturn):0.00}× the bare program on its two sites, entry + return: {Added(Tool.BareEntryAndReturn):0} ns)" : "")}{(bench.HasCallsCount ? $", pyprobe calls --count {Added(Tool.PyprobeCallsCount) / bare:0.00}×" : "")},
            bpftrace count {Added(Tool.BpftraceCount) / bare:0.00}× (per function, `@[str(arg0), str(arg1)] = count()`: {Added(Tool.BpftraceCountPerFunction) / bare:0.00}×), bpftrace printf one-liner {Added(Tool.BpftracePrintf) / bare:0.00}×.
            Lost at full speed: pyprobe trace {LostOf(r39, Tool.PyprobeTrace)}{(bench.HasCalls ? $", pyprobe calls {LostOf(r39, Tool.PyprobeCalls)}" : "")},
            bpftrace count {LostOf(r39, Tool.BpftraceCount)}, bpftrace printf {LostOf(r39, Tool.BpftracePrintf)}.
            """);
        if (Added(Tool.PyprobeTrace) > Added(Tool.BpftraceCount))
            report.Behind($"Overhead per call: pyprobe trace adds {Added(Tool.PyprobeTrace):0} ns per call against bpftrace count's {Added(Tool.BpftraceCount):0} ns (CPython {p39.FullVersion}). " +
                "Not the same work: bpftrace count increments a per-CPU counter, pyprobe trace sends a ring record per call with a timestamp and the line, and each function's names whole once (up to 4096 bytes each; bpftrace's str() stops at 64), then by reference (the name-pair memo); the record alone is most of the difference (see where a traced call's time goes). " +
                (bench.HasCalls ? $"pyprobe's own kernel-side counter, `pyprobe calls`, adds {Added(Tool.PyprobeCalls):0} ns (it also times every call and keeps per-thread stacks)." : ""));
        if (bench.HasCalls && Added(Tool.PyprobeCalls) > Added(Tool.BpftraceCount))
            report.Behind($"Overhead per call: pyprobe calls adds {Added(Tool.PyprobeCalls):0} ns against bpftrace count's {Added(Tool.BpftraceCount):0} ns: calls does more per event (function__entry and function__return both attached, a timestamp and a per-thread stack push/pop, a hash-map update keyed by code location) than a bare counter." +
                (bench.HasCallsCount ? $" Counting alone, `pyprobe calls --count` (function__return only, no clock, still per function) adds {Added(Tool.PyprobeCallsCount):0} ns." : ""));
        if (Added(Tool.PyprobeTrace) > Added(Tool.BpftracePrintf))
            report.Behind($"Overhead per call: pyprobe trace adds {Added(Tool.PyprobeTrace):0} ns against the bpftrace printf one-liner's {Added(Tool.BpftracePrintf):0} ns: pyprobe copies whole strings where bpftrace copies at most 64 bytes each.");
    }

    public static readonly Dictionary<string, Dictionary<Tool, List<Run>>> Summaries = [];

    private static string LostOf(Dictionary<Tool, List<Run>> runs, Tool tool)
    {
        var list = runs.GetValueOrDefault(tool)?.Where(r => r.Lost is not null).ToList() ?? [];
        return list.Count == 0 ? "n/a" : LostText(list);
    }

    public static void Rates(Bench bench, Report report, Py py)
    {
        report.BehindTopics("Highest loss-free rate");
        double[] rates = [10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];
        const double seconds = 1.0;
        var tools = Tracers(bench, false);
        var active = tools.ToList();
        var table = tools.ToDictionary(t => t, _ => new Dictionary<double, List<Run>>());
        foreach (var rate in rates)
        {
            if (active.Count == 0) break;
            var n = ((long)(rate * seconds)).ToString();
            var runs = Matrix(bench, py, active, [n, "--rate", rate.ToString("0")], $"rate {rate / 1e3:0}k/s");
            FixCounts(runs, py.Version + " rate");
            if (!runs[Tool.PyprobeTrace].Any() || Extras.GetValueOrDefault(py.Version + " rate") == 0)
                FixCounts(runs, py.Version); // fall back on the full-speed measurement of the same workload
            foreach (var (tool, list) in runs) table[tool][rate] = list;
            active = active.Where(t => !(runs[t].Count > 0 && runs[t].All(r => r.Lost is > 0))).ToList();
        }
        var full = Summaries.GetValueOrDefault($"overhead {py.Version}");
        report.Section("Events lost, and the highest rate without loss",
            $"""
            CPython {py.FullVersion}, one thread. The workload paces its calls of leaf() with a busy-wait on perf_counter to a target rate for
            {seconds:0} s; each cell is the median lost events (calls − seen) over {bench.Reps} runs, with the rate the traced program
            really achieved. A tool stops being tried at higher rates once every run of a rate lost events. "full speed" repeats the
            overhead section ({bench.Calls:N0} calls as fast as the traced program goes).
            """);
        var headers = new List<string> { "tool" };
        headers.AddRange(rates.Select(r => $"{Stats.Count(r)}/s"));
        headers.Add("full speed");
        headers.Add("highest rate without loss (achieved)");
        var rows = new List<IReadOnlyList<string>>();
        foreach (var tool in tools)
        {
            var row = new List<string> { Cases.Label(tool) };
            double? best = null;
            foreach (var rate in rates)
            {
                if (!table[tool].TryGetValue(rate, out var list) || list.Count == 0) { row.Add("–"); continue; }
                var counted = list.Where(r => r.Lost is not null).ToList();
                var achieved = Stats.Median(list.Select(r => r.Rate));
                row.Add(counted.Count == 0 ? "?" : $"{LostText(counted)} ({Stats.Count(achieved)}/s)");
                if (counted.Count == list.Count && counted.All(r => r.Lost <= 0) && (best is null || achieved > best)) best = achieved;
            }
            var fullRuns = full?.GetValueOrDefault(tool)?.Where(r => r.Lost is not null).ToList() ?? [];
            var fullRate = fullRuns.Count > 0 ? Stats.Median(fullRuns.Select(r => r.Rate)) : double.NaN;
            row.Add(fullRuns.Count == 0 ? "–" : $"{LostText(fullRuns)} ({Stats.Count(fullRate)}/s)");
            if (fullRuns.Count > 0 && fullRuns.All(r => r.Lost <= 0) && (best is null || fullRate > best)) best = fullRate;
            row.Add(best is null ? "none tried" : fullRuns.Count > 0 && fullRuns.All(r => r.Lost <= 0) && best == fullRate ? $"full speed ({Stats.Count(fullRate)}/s)" : $"{Stats.Count(best.Value)}/s");
            rows.Add(row);
            RateBest[tool] = best ?? 0;
        }
        report.Table(headers, rows);
        var ppFull = full?.GetValueOrDefault(Tool.PyprobeTrace)?.Where(r => r.Lost is not null).ToList() ?? [];
        if (RateBest.GetValueOrDefault(Tool.PyprobeTrace) < RateBest.GetValueOrDefault(Tool.BpftraceCount) * 0.95)
            report.Behind(ppFull.Count > 0 && ppFull.All(r => r.Lost <= 0)
                ? $"Highest loss-free rate: pyprobe trace lost nothing at any rate up to full speed, but its full speed is {Stats.Count(RateBest[Tool.PyprobeTrace])} calls/s against {Stats.Count(RateBest[Tool.BpftraceCount])} under bpftrace count: the traced program is slower under pyprobe because each call costs more (see the overhead section), not because events are dropped."
                : $"Highest loss-free rate: pyprobe trace {Stats.Count(RateBest[Tool.PyprobeTrace])}/s against bpftrace count's {Stats.Count(RateBest[Tool.BpftraceCount])}/s. A counter in a map cannot lose events; a stream of records can, once the consumer falls behind the ring.");
    }

    private static readonly Dictionary<Tool, double> RateBest = [];

    /// <summary>The last run's marks ("ns bytes phase" lines ending with "--"), each as ms and bytes from <paramref name="launchedAtNs"/>; the file is deleted.</summary>
    private static List<(string Phase, double AtMs, long Bytes)> LastLaunchMarks(string file, long launchedAtNs)
    {
        if (!File.Exists(file)) return [];
        var lines = File.ReadAllLines(file);
        File.Delete(file);
        var last = lines.Length - 1;
        while (last >= 0 && lines[last] == "--") last--;
        var first = last;
        while (first > 0 && lines[first - 1] != "--") first--;
        var marks = new List<(string, double, long)>();
        for (var i = first; i <= last && i >= 0; i++)
        {
            var parts = lines[i].Split(' ', 3);
            marks.Add((parts[2], (long.Parse(parts[0], CultureInfo.InvariantCulture) - launchedAtNs) / 1e6, long.Parse(parts[1], CultureInfo.InvariantCulture)));
        }
        return marks;
    }

    /// <summary>Each mark as a phase from the end of the one before (the first from the launch).</summary>
    private static void AddLaunchPhases(List<(string Phase, double Ms, double Kb)> phases, List<(string Phase, double AtMs, long Bytes)> marks)
    {
        double previousMs = 0;
        long previousBytes = 0;
        foreach (var (phase, atMs, bytes) in marks)
        {
            phases.Add((phase, atMs - previousMs, (bytes - previousBytes) / 1024.0));
            (previousMs, previousBytes) = (atMs, bytes);
        }
    }

    public static void Startup(Bench bench, Report report, Py py)
    {
        report.BehindTopics("Start-up", "First event line", "Peak RSS");
        const string trace = "pyprobe trace -p PID", bpftrace = "bpftrace -p PID (printf one-liner)", calls = "pyprobe calls -p PID, pyenv 3.12 (eval-frame + hook)";
        // The same target sleeping between calls (time.sleep): the second CPU is free, as on most machines.
        const string traceSleeping = "pyprobe trace -p PID, target sleeping between calls";
        // What the bench's own launch and line reading take beside the same busy workload: a shell that prints the line
        // at once. Everything a tracer's row shows above it is the tracer's own.
        const string floor = "floor: sh -c 'echo Attached >&2' (the bench's launch and read of the line)";
        // What people run: a pyenv 3.12 has no probes; calls attaches to _PyEval_EvalFrameDefault (entry and every ret)
        // and prints nothing until it ends, so its row has the Attached line only.
        const string pyenv312 = "/root/.pyenv/versions/3.12.1/bin/python3.12";
        var subjects = new Dictionary<string, Py> { [trace] = py, [bpftrace] = py, [traceSleeping] = py, [floor] = py };
        if (File.Exists(pyenv312)) subjects[calls] = new Py("3.12", "3.12.1 (pyenv)", pyenv312, pyenv312, [pyenv312], new Dictionary<string, string>());
        var results = subjects.Keys.ToDictionary(k => k, _ => new List<(double Announce, double? First, double? Written, long RssKb)>());
        // Where trace's launch goes: pyprobe's own marks (PYPROBE_LAUNCH_PHASES), each phase from the end of the last.
        var phasesFile = Path.Combine(Path.GetTempPath(), $"pyprobe-bench-phases-{Environment.ProcessId}");
        var phases = new List<(string Phase, double Ms, double Kb)>();
        // Round 0 is a warm-up, not kept: every row's launch once, so that no kept launch includes the driver compiling the
        // code it runs (and every tool starts from the page cache).
        for (var rep = -1; rep < bench.Reps; rep++)
        {
            var order = rep % 2 == 0 ? results.Keys.ToList() : results.Keys.Reverse().ToList();
            foreach (var name in order)
            {
                try
                {
                    var target = subjects[name];
                    using var workload = Child.Start([.. target.Command, bench.Workload, "0", "--rate", "1000", "--forever", .. name == traceSleeping ? new[] { "--sleeping" } : []], env: target.Env);
                    var ready = workload.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(30)) ?? throw new InvalidOperationException("workload did not start");
                    var pid = ready.Line.Split(' ')[1];
                    var isPyprobe = name.StartsWith("pyprobe", StringComparison.Ordinal);
                    using var tracer = name switch
                    {
                        trace => Child.Start([bench.Pyprobe, "trace", "-p", pid], env: new Dictionary<string, string> { ["PYPROBE_LAUNCH_PHASES"] = phasesFile }),
                        traceSleeping => Child.Start([bench.Pyprobe, "trace", "-p", pid], env: new Dictionary<string, string> { ["PYPROBE_LAUNCH_PHASES"] = phasesFile }),
                        calls => Child.Start([bench.Pyprobe, "calls", "-p", pid], env: new Dictionary<string, string> { ["PYPROBE_LAUNCH_PHASES"] = phasesFile }),
                        floor => Child.Start(["/bin/sh", "-c", "echo Attached >&2; exec sleep 30"]),
                        _ => Child.Start(["bpftrace", "-B", "line", "-p", pid, "-e", Cases.PrintfScript(py.Binary)]),
                    };
                    var announce = isPyprobe || name == floor
                        ? tracer.WaitLine(l => l.StartsWith("Attached", StringComparison.Ordinal), TimeSpan.FromSeconds(60), stderr: true)
                        : tracer.WaitLine(l => l.StartsWith("Attaching", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
                    var first = name is calls or floor ? null : tracer.WaitLine(l => l.Contains("leaf", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
                    if (announce is null || (first is null && name is not (calls or floor))) throw new InvalidOperationException($"{name} did not attach: {string.Join(" | ", tracer.Err)}");
                    Thread.Sleep(1000);
                    var rss = Native.PeakRssKb(tracer.Pid);
                    tracer.Signal(Native.SIGINT);
                    tracer.Wait(TimeSpan.FromSeconds(30));
                    workload.CloseInput();
                    workload.Wait(TimeSpan.FromSeconds(10));
                    if (rep < 0)
                    {
                        Bench.Log($"startup warm-up {name}: announced {announce.Value.At * 1000:0} ms (not kept)");
                        continue;
                    }
                    var marks = isPyprobe ? LastLaunchMarks(phasesFile, tracer.LaunchedAtNs) : [];
                    var written = marks.FirstOrDefault(m => m.Phase == "Attached line written");
                    results[name].Add((announce.Value.At, first?.At, written.Phase is null ? null : written.AtMs / 1000, rss));
                    if (name == trace) AddLaunchPhases(phases, marks);
                    Bench.Log($"startup rep {rep + 1} {name}: announced {announce.Value.At * 1000:0} ms{(first is { } f ? $", first event {f.At * 1000:0} ms" : "")}, peak RSS {rss / 1024.0:0.0} MB");
                }
                catch (Exception e)
                {
                    Bench.Log($"startup rep {rep + 1} {name} failed: {e.Message}");
                }
            }
        }
        report.Section("Start-up",
            $"""
            CPython {py.FullVersion} running leaf() 1,000 times a second (paced by a busy-wait: it keeps one of the two CPUs); the tracer is
            launched with `-p PID` on the `function__entry` probe and prints every event. "announced" = launch to pyprobe's `Attached` line /
            bpftrace's `Attaching N probes...` line (bpftrace prints it before it attaches); "first event" = launch to the first event line on
            the tracer's stdout (bpftrace with `-B line`), which is when tracing is really live. Peak RSS = VmHWM of the tracer process 1 s after
            its first event. The `calls` row attaches to a pyenv 3.12 (no probes: a uprobe on _PyEval_EvalFrameDefault's entry and every
            ret, the eval-frame hook written) running the same workload; it prints no event lines, so it has the Attached line only.
            The "sleeping" row traces the same workload paced by time.sleep instead (`--sleeping`): the target leaves its CPU idle.
            The "floor" row launches a shell that prints `Attached` at once, beside the busy workload: the part of every row that is
            the bench's own launch (fork, exec) and its reading of the line. A first round of every row is a warm-up and is not kept,
            and the driver runs without tiered compilation (no recompiling of its own code on the free CPU during a launch).
            "written" = launch to the moment pyprobe wrote its `Attached` line, on pyprobe's own clock (`PYPROBE_LAUNCH_PHASES`; the
            same CLOCK_MONOTONIC the bench read just before it launched pyprobe): the bench's launch is in it, its reading of the line is not.
            """);
        report.Table(["tracer", "announced (ms)", "written (pyprobe's clock, ms)", "probes live (ms)", "first event line on stdout (ms)", "peak RSS (MB)"],
            results.Select(kv => (IReadOnlyList<string>)[kv.Key,
                Stats.Spread(kv.Value.Select(x => x.Announce * 1000)),
                kv.Value.All(x => x.Written is null) ? "–" : Stats.Spread(kv.Value.Where(x => x.Written is not null).Select(x => x.Written!.Value * 1000)),
                Stats.Spread(kv.Value.Select(x => (kv.Key.StartsWith("pyprobe", StringComparison.Ordinal) ? x.Announce : x.First ?? x.Announce) * 1000)),
                kv.Value.All(x => x.First is null) ? "–" : Stats.Spread(kv.Value.Select(x => (x.First ?? 0) * 1000)),
                kv.Key == floor ? "–" : Stats.Spread(kv.Value.Select(x => x.RssKb / 1024.0), "0.0")]));
        report.Text("\"probes live\": pyprobe prints `Attached` once every link exists (the same moment); bpftrace prints `Attaching` before it attaches, so its first event is the earliest proof it is live.");
        File.Delete(phasesFile);
        if (phases.Count > 0)
        {
            report.Text("Where `pyprobe trace -p PID`'s launch goes: pyprobe's own marks (`PYPROBE_LAUNCH_PHASES=FILE`), each phase from the end of the one before, the first from the bench's launch (fork and exec included); KB = what the launching thread allocated in the phase. The workload keeps one CPU busy, so a phase also holds the time pyprobe's other threads (the uprobe warm-up with the kernel feature probes, the record map's zeroing) took from the launching one.");
            report.Table(["phase", "ms (median, range)", "KB allocated (median)"],
                phases.Select(p => p.Phase).Distinct().Select(phase => (IReadOnlyList<string>)[phase,
                    Stats.Spread(phases.Where(p => p.Phase == phase).Select(p => p.Ms), "0.0"),
                    Stats.Median(phases.Where(p => p.Phase == phase).Select(p => p.Kb)).ToString("0", CultureInfo.InvariantCulture)]));
        }
        var pp = results["pyprobe trace -p PID"];
        var bt = results["bpftrace -p PID (printf one-liner)"];
        if (pp.Count > 0 && bt.Count > 0)
        {
            double ppLive = Stats.Median(pp.Select(x => x.Announce)), btLive = Stats.Median(bt.Select(x => x.First ?? x.Announce));
            double ppFirst = Stats.Median(pp.Select(x => x.First ?? x.Announce)), btFirst = Stats.Median(bt.Select(x => x.First ?? x.Announce));
            double ppRss = Stats.Median(pp.Select(x => (double)x.RssKb)), btRss = Stats.Median(bt.Select(x => (double)x.RssKb));
            var callsLive = results.TryGetValue(calls, out var c) && c.Count > 0 ? $"; pyprobe calls -p on pyenv 3.12 (eval-frame) {Stats.Median(c.Select(x => x.Announce)) * 1000:0} ms" : "";
            var sleepingLive = results.TryGetValue(traceSleeping, out var z) && z.Count > 0 ? $" ({Stats.Median(z.Select(x => x.Announce)) * 1000:0} ms with the target sleeping between calls)" : "";
            report.Headline($"**Start-up** (launch to probes live): pyprobe {ppLive * 1000:0} ms{sleepingLive}, bpftrace {btLive * 1000:0} ms{callsLive}; peak RSS pyprobe {ppRss / 1024:0.0} MB, bpftrace {btRss / 1024:0.0} MB.");
            if (ppLive > btLive) report.Behind($"Start-up: pyprobe is live {ppLive * 1000:0} ms after launch, bpftrace {btLive * 1000:0} ms.");
            if (ppFirst > btFirst * 1.5)
                report.Behind($"First event line on a piped stdout: pyprobe {ppFirst * 1000:0} ms after launch, bpftrace (`-B line`) {btFirst * 1000:0} ms. " +
                    "pyprobe batches its output: a line waits in the 256 KB output buffer until the ring is found empty or for at most 100 ms " +
                    "(src/Pyprobe.Cli/Output/EventBuffer.cs, TraceRun), where bpftrace -B line writes each line at once; " +
                    "batching is what keeps formatting off the per-event path.");
            if (ppRss > btRss) report.Behind($"Peak RSS: pyprobe {ppRss / 1024:0.0} MB against bpftrace's {btRss / 1024:0.0} MB.");
        }
    }

    public static void Throughput(Bench bench, Report report, Py py)
    {
        const int RingMb = 256, Cycles = 2;
        var variants = new List<(string Name, string Binary, string[] Args, bool DevNull)>
        {
            ("text → file", bench.Pyprobe, ["--format", "text"], false),
            ("JSON → file", bench.Pyprobe, ["--format", "json"], false),
            ("raw capture → file", bench.Pyprobe, ["--format", "raw"], false),
            ("text → /dev/null", bench.Pyprobe, ["--format", "text"], true),
            ("JSON → /dev/null", bench.Pyprobe, ["--format", "json"], true),
            ("raw capture → /dev/null", bench.Pyprobe, ["--format", "raw"], true),
        };
        // The same binary with the ring buffer in place of the queues per CPU (PYPROBE_EVENT_RING=1), side by side.
        variants.Add(("text → file, through the ring", bench.Pyprobe, ["--format", "text"], false));
        variants.Add(("JSON → file, through the ring", bench.Pyprobe, ["--format", "json"], false));
        variants.Add(("raw capture → file, through the ring", bench.Pyprobe, ["--format", "raw"], false));
        if (bench.Baseline is { } before)
        {
            variants.Add(("text → file, before", before, ["--format", "text"], false));
            variants.Add(("JSON → file, before", before, ["--format", "json"], false));
        }
        // BENCH_OUTPUTS=text,raw keeps the variants whose name starts with one of these (a quick look at one path).
        if (Environment.GetEnvironmentVariable("BENCH_OUTPUTS") is { } only)
            variants = variants.Where(v => only.Split(',').Any(o => v.Name.StartsWith(o, StringComparison.OrdinalIgnoreCase))).ToList();
        var results = variants.ToDictionary(v => v.Name, _ => new List<(RingFill.Result Fill, long? Delivered, long Bytes)>());
        var converts = new Dictionary<string, List<double>> { ["convert raw → text file"] = [], ["convert raw → JSON file"] = [] };
        for (var rep = 0; rep < bench.Reps; rep++)
        {
            var order = rep % 2 == 0 ? variants : Enumerable.Reverse(variants).ToList();
            foreach (var v in order)
            {
                var file = v.DevNull ? "/dev/null" : bench.TempFile("tp");
                try
                {
                    using var workload = Child.Start([.. py.Command, bench.Workload, "0"], env: py.Env);
                    var ready = workload.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(30)) ?? throw new InvalidOperationException("workload did not start");
                    var pid = int.Parse(ready.Line.Split(' ')[1]);
                    using var tracer = Child.Start([v.Binary, "trace", "-p", pid.ToString(), "--ring-buffer-mb", RingMb.ToString(), .. v.Args, "-o", file],
                        env: v.Name.EndsWith("through the ring", StringComparison.Ordinal) ? new Dictionary<string, string> { ["PYPROBE_EVENT_RING"] = "1" } : null);
                    Cases.WaitAttached(tracer);
                    var fill = QueueFill.Uses(tracer.Pid)
                        ? QueueFill.Run(tracer.Pid, RingMb << 20, RingFill.Record(pid, bench.Workload, "leaf", 21))
                        : RingFill.Run(tracer.Pid, pid, bench.Workload, "leaf", 21, Cycles);
                    tracer.Signal(Native.SIGINT);
                    tracer.Wait(TimeSpan.FromSeconds(60));
                    var delivered = tracer.Err.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"(\d+) events delivered")).Where(m => m.Success).Select(m => (long?)long.Parse(m.Groups[1].Value)).FirstOrDefault();
                    var bytes = v.DevNull ? 0 : new FileInfo(file).Length;
                    workload.CloseInput();
                    workload.Wait(TimeSpan.FromSeconds(10));
                    results[v.Name].Add((fill, delivered, bytes));
                    Bench.Log($"throughput rep {rep + 1} {v.Name}: {fill.EventsPerSecond / 1e6:0.00}M events/s ({fill.EventsPerCpuSecond / 1e6:0.00}M per CPU-second; {fill.Written} written in {fill.Seconds:0.000} s of draining, pyprobe delivered {delivered})");
                    if (v.Name == "raw capture → file" && delivered is { } n)
                    {
                        foreach (var (name, format) in new[] { ("convert raw → text file", "text"), ("convert raw → JSON file", "json") })
                        {
                            var converted = bench.TempFile("cv");
                            var clock = System.Diagnostics.Stopwatch.StartNew();
                            var result = Program.Sh(v.Binary, "convert", file, "--format", format, "-o", converted);
                            var seconds = clock.Elapsed.TotalSeconds;
                            File.Delete(converted);
                            if (result.Code != 0) throw new InvalidOperationException($"convert failed: {result.Out}");
                            converts[name].Add(n / seconds);
                            Bench.Log($"throughput rep {rep + 1} {name}: {n / seconds / 1e6:0.00}M events/s ({n} in {seconds:0.000} s, start-up included)");
                        }
                    }
                }
                catch (Exception e)
                {
                    Bench.Log($"throughput rep {rep + 1} {v.Name} failed: {e.Message}");
                }
                finally
                {
                    if (!v.DevNull) File.Delete(file);
                }
            }
        }
        report.Section("Consumer throughput (no traced program)",
            $"""
            The real dist/pyprobe (`trace -p PID --ring-buffer-mb {RingMb}` on an idle Python) draining a ring buffer filled from the kernel:
            the bench copies pyprobe's ring fd (pidfd_getfd), stops pyprobe (SIGSTOP), and runs an XDP program through BPF_PROG_TEST_RUN
            that writes function__entry records in pyprobe's own layout (filename .../bench/workloads/leaf.py, funcname leaf) with
            bpf_ringbuf_output until the ring refuses one (full: about {RingMb}M / 128 bytes per framed record); then pyprobe continues (SIGCONT).
            events/s = records written / time from SIGCONT until pyprobe's consumer position caught up with the producer,
            {Cycles} fill-and-drain cycles per run, so the producer never competes with pyprobe for a CPU. "delivered" is pyprobe's own
            count, which must equal the records written. Files are written to {Path.GetTempPath()} (a disk; the page cache takes the writes).
            "events per CPU-second" divides by pyprobe's own CPU time (user + system, /proc/PID/stat) over the same spans: on this shared
            machine the wall time also counts waiting for a CPU. `convert` is timed as a whole process (start-up included, wall time)
            on the raw capture of the same run.
            Where pyprobe sends records to its queues per CPU (trace's default), the bench fills the queue of one CPU instead, with an XDP
            program that sends through pyprobe's own CpuQueueOutput (timestamps 10 ms old, so none waits out the reader's hold-back), and
            times pyprobe's tail catching up with the head; a queue holds at most 8 MiB, so the cycles repeat until 2,000,000 records
            were drained (bench/Pyprobe.Bench/QueueFill.cs).
            """);
        report.Table(["output", "events/s", "events per CPU-second", "MB/s written", "pyprobe delivered = written"],
            results.Select(kv => (IReadOnlyList<string>)[kv.Key,
                kv.Value.Count == 0 ? "failed" : Stats.CountSpread(kv.Value.Select(x => x.Fill.EventsPerSecond)),
                kv.Value.Count == 0 ? "–" : Stats.CountSpread(kv.Value.Select(x => x.Fill.EventsPerCpuSecond)),
                kv.Value.Count == 0 || kv.Value.All(x => x.Bytes == 0) ? "–" : Stats.Spread(kv.Value.Select(x => x.Bytes / 1e6 / x.Fill.Seconds)),
                kv.Value.Count == 0 ? "–" : $"{kv.Value.Count(x => x.Delivered == (long)x.Fill.Written)} of {kv.Value.Count} runs"])
            .Concat(converts.Select(kv => (IReadOnlyList<string>)[kv.Key, kv.Value.Count == 0 ? "failed" : Stats.CountSpread(kv.Value), "–", "–", "–"])));
        if (results["text → file"].Count > 0 && results["JSON → file"].Count > 0)
            report.Headline($"**Consumer throughput** (decode + format + write, no target): text {Stats.Count(Stats.Median(results["text → file"].Select(x => x.Fill.EventsPerSecond)))} events/s, JSON {Stats.Count(Stats.Median(results["JSON → file"].Select(x => x.Fill.EventsPerSecond)))} events/s to a file" +
                (results["raw capture → file"].Count > 0 ? $"; raw capture {Stats.Count(Stats.Median(results["raw capture → file"].Select(x => x.Fill.EventsPerSecond)))} events/s" : "") +
                (converts["convert raw → text file"].Count > 0 ? $", converted to text at {Stats.Count(Stats.Median(converts["convert raw → text file"]))} events/s" : "") + ".");
    }

    public static void Scale(Bench bench, Report report, Py py)
    {
        report.BehindTopics("Loss at scale");
        report.Section("Scale: threads and processes",
            $"""
            CPython {py.FullVersion}, {bench.Calls:N0} calls of leaf() in total, split over T threads of one process (traced with `-p PID`;
            the GIL runs one at a time) or over 50 processes forked from one parent (traced with `pyprobe --all BINARY` / bpftrace without `-p`,
            counts summed over the 50 pids). ns per call = wall time from the first worker's start to the last one's end / total calls,
            so on 2 cores 50 processes can run two at a time. One thread: see the overhead section (same workload).
            pyprobe trace reads events as started and at nice -10 while a quarter of its ring waits unread (its default
            `--priority auto`); with 50 processes it also runs with `--priority high` (nice -10 throughout), `--priority normal`
            and `--priority realtime` (SCHED_FIFO 1), side by side, and a second table splits the CPU time between the programs
            and the tracer.
            """);
        const string Processes = "50 processes (--all)";
        var configs = new (string Name, string[] Args, double? Extras)[]
        {
            ("2 threads", [bench.Calls.ToString(), "--threads", "2"], null),
            ("8 threads", [bench.Calls.ToString(), "--threads", "8"], null),
            (Processes, [bench.Calls.ToString(), "--procs", "50"], 50),
        };
        foreach (var (name, args, extras) in configs)
        {
            // With 50 processes pyprobe's reader competes with the programs for the CPUs: measure the default (raised
            // while behind) against --priority high, normal and realtime side by side.
            var tools = name == Processes ? Tracers(bench, true).SelectMany(t => t == Tool.PyprobeTrace ? new[] { Tool.PyprobeTraceNormalPriority, t, Tool.PyprobeTraceHighPriority, Tool.PyprobeTraceRealtime } : [t]).ToList() : Tracers(bench, true);
            var runs = Matrix(bench, py, tools, args, name);
            FixCounts(runs, py.Version + name, extras);
            report.Text($"### {name}");
            OverheadTable(report, runs);
            if (name == Processes) CpuSplitTable(report, runs);
            Summaries[name] = runs;
        }
        var parts = new List<string>();
        foreach (var (name, _, _) in configs)
        {
            var runs = Summaries[name];
            var none = MedianNs(runs, Tool.None);
            var bare = MedianNs(runs, Tool.Bare) - none;
            parts.Add($"{name}: pyprobe trace {(MedianNs(runs, Tool.PyprobeTrace) - none) / bare:0.00}× bare, lost {LostOf(runs, Tool.PyprobeTrace)}; bpftrace printf {(MedianNs(runs, Tool.BpftracePrintf) - none) / bare:0.00}×, lost {LostOf(runs, Tool.BpftracePrintf)}");
        }
        var procs = Summaries[Processes];
        if (procs.GetValueOrDefault(Tool.PyprobeTraceNormalPriority) is { Count: > 0 })
            parts.Add($"with --priority normal (the reader never raised) pyprobe lost {LostOf(procs, Tool.PyprobeTraceNormalPriority)}, with --priority high {LostOf(procs, Tool.PyprobeTraceHighPriority)}, with --priority realtime {LostOf(procs, Tool.PyprobeTraceRealtime)}");
        if (CpuShare(procs, Tool.PyprobeTrace) is { } share)
            parts.Add($"pyprobe used {share:0.0}% of the CPU time spent (programs + pyprobe)");
        report.Headline("**Scale**: " + string.Join("; ", parts) + ".");
        foreach (var (name, _, _) in configs)
        {
            var runs = Summaries[name];
            var lostRuns = runs.GetValueOrDefault(Tool.PyprobeTrace)?.Where(r => r.Lost > 0).ToList() ?? [];
            if (lostRuns.Count == 0) continue;
            var counted = runs[Tool.PyprobeTrace].Where(r => r.Lost is not null).ToList();
            var ppRate = Stats.Median(runs[Tool.PyprobeTrace].Select(r => r.Rate));
            report.Behind($"Loss at scale ({name}): pyprobe trace lost {LostText(counted)} of the events in {lostRuns.Count} of {counted.Count} runs, where bpftrace count (a kernel-side counter) lost {LostOf(runs, Tool.BpftraceCount)} " +
                $"(bpftrace printf lost {LostOf(runs, Tool.BpftracePrintf)}; pyprobe calls, also kernel-side, lost {LostOf(runs, Tool.PyprobeCalls)}). With several processes both CPUs produce events at once " +
                $"(≈{Stats.Count(ppRate)} events/s here) while one pyprobe thread decodes and formats them on the same two CPUs (see consumer throughput), so the ring fills; pyprobe counts and reports every lost event.");
        }
    }

    /// <summary>
    /// Where the CPU time of a 50-process run went: the programs' own (user; kernel, where the uprobe traps and BPF
    /// programs run) against the tracer's, per tool, medians over the repetitions.
    /// </summary>
    private static void CpuSplitTable(Report report, Dictionary<Tool, List<Run>> runs)
    {
        report.Text("CPU time of the 50-process runs (medians): the programs' own, from getrusage in each process over its calls " +
            "(kernel time includes the uprobe traps and BPF programs their calls fire), and the tracer's, from its /proc/PID/stat " +
            "when the programs had ended (10 ms ticks). Used: what the two took of the 2 CPUs × the wall time; the machine's CPUs: how busy /proc/stat " +
            "says they were over the same run (every process, the bench's own and anything else on this shared machine).");
        report.Table(["case", "wall s", "programs: user + kernel s", "tracer: user + kernel s", "tracer's share of the CPU time used", "used", "machine's CPUs busy"],
            runs.Where(kv => kv.Value.Count > 0 && kv.Value.All(r => r.ProgramsCpu is not null)).Select(kv =>
            {
                var (tool, list) = (kv.Key, kv.Value);
                var wall = Stats.Median(list.Select(r => r.Wall));
                var user = Stats.Median(list.Select(r => r.ProgramsCpu!.Value.User));
                var sys = Stats.Median(list.Select(r => r.ProgramsCpu!.Value.Sys));
                var traced = list.All(r => r.ToolCpu is not null);
                var toolUser = traced ? Stats.Median(list.Select(r => r.ToolCpu!.Value.User)) : 0;
                var toolSys = traced ? Stats.Median(list.Select(r => r.ToolCpu!.Value.Sys)) : 0;
                return (IReadOnlyList<string>)[
                    Cases.Label(tool),
                    wall.ToString("0.00"),
                    $"{user:0.00} + {sys:0.00}",
                    traced ? $"{toolUser:0.00} + {toolSys:0.00}" : "–",
                    traced ? $"{CpuShare(runs, tool):0.0}%" : "–",
                    $"{100 * (user + sys + toolUser + toolSys) / (2 * wall):0}%",
                    list.All(r => r.MachineBusy is not null) ? $"{100 * Stats.Median(list.Select(r => r.MachineBusy!.Value)):0}%" : "–",
                ];
            }));
    }

    /// <summary>The tracer's median share of all the CPU time the run used (programs + tracer), in percent; null without figures.</summary>
    private static double? CpuShare(Dictionary<Tool, List<Run>> runs, Tool tool)
    {
        if (runs.GetValueOrDefault(tool) is not { Count: > 0 } list || !list.All(r => r.ToolCpu is not null && r.ProgramsCpu is not null)) return null;
        return Stats.Median(list.Select(r =>
        {
            var tracer = r.ToolCpu!.Value.User + r.ToolCpu!.Value.Sys;
            return 100 * tracer / Math.Max(1e-9, tracer + r.ProgramsCpu!.Value.User + r.ProgramsCpu!.Value.Sys);
        }));
    }
}
