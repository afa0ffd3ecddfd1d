using System.Globalization;

namespace Pyprobe.Bench;

internal enum Profiler { None, Pyprobe, PyprobeNative, PyprobeKernel, Sampler315, Austin, Bpftrace }

/// <summary>One side of the profiler comparison: a profiler at a rate (None: the workload alone).</summary>
internal sealed record ProfSide(Profiler Tool, int Hz)
{
    public string Label => Tool switch
    {
        Profiler.None => "no profiler",
        Profiler.Pyprobe => $"pyprobe record -r {Hz}",
        Profiler.PyprobeNative => $"pyprobe record --native -r {Hz}",
        Profiler.PyprobeKernel => $"pyprobe record --kernel -r {Hz}",
        Profiler.Sampler315 => $"3.15 sampler -r {Hz}",
        Profiler.Austin => $"austin -s -i {AustinInterval}",
        Profiler.Bpftrace => $"bpftrace profile:hz:{Hz} {{}}",
        _ => Tool.ToString(),
    };

    public string AustinInterval => $"{Math.Round(1e6 / Hz):0}us";
}

/// <summary>An interpreter the profilers sample: its command line and whether it is the 3.15 build (the only one the 3.15 sampler reads).</summary>
internal sealed record ProfTarget(string Name, IReadOnlyList<string> Command, IReadOnlyDictionary<string, string>? Env, bool Is315, bool AustinReads);

/// <summary>What one run of split.py under one side measured.</summary>
/// <param name="Wall">the workload's own timing of its fixed work, seconds</param>
/// <param name="TargetCpu">the workload's process CPU over that work, seconds</param>
/// <param name="ToolCpu">the profiler's on-CPU time (user + kernel, every thread, from schedstat) over the same window, seconds</param>
/// <param name="ToolRssKb">the profiler's peak RSS (VmHWM), KiB</param>
/// <param name="BpfNs">run time of the profiler's BPF programs over the window (kernel.bpf_stats_enabled), ns</param>
/// <param name="HotShare">hot()'s share of the hot()+cold() samples in the profiler's output</param>
/// <param name="TrueShare">hot()'s share of hot()+cold() CPU as the workload measured it (thread_time)</param>
internal sealed record ProfRun(ProfSide Side, double Wall, double TargetCpu, double? ToolCpu, long? ToolRssKb, double? BpfNs, long? BpfRuns,
    double? HotShare, double TrueShare, double? Samples, string? Note);

/// <summary>One run of bench/workloads/split.py under one profiler, and how its figures are read.</summary>
internal static class ProfilerCases
{
    public static string SplitWorkload(Bench bench) => Path.Combine(bench.Root, "bench", "workloads", "split.py");

    public static string AustinLauncher => Path.Combine(Environment.GetEnvironmentVariable("PYPROBE_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "pyprobe"), "austin", "bin", "austin");

    /// <summary>
    /// A profiler that prints nothing when it is ready (3.15 sampler, austin) is taken as sampling the first time it is seen
    /// asleep between samples (its thread blocked in nanosleep or clock_nanosleep) or holding a /proc file of the target
    /// open (in CPU mode both read /proc/TARGET/task/TID/stat for each sample), plus 200 ms. The 3.15 sampler spends
    /// over a second of a loaded machine importing itself before that; none of it is in the measured window. At most 8 s.
    /// </summary>
    public static void SettleSilent(Child tool, string targetPid)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(8);
        var targetProc = $"/proc/{targetPid}/";
        while (DateTime.UtcNow < deadline && !tool.Process.HasExited && !Sampling(tool.Pid, targetProc))
            Thread.Sleep(2);
        Thread.Sleep(200);
    }

    private static bool Sampling(int pid, string targetProc)
    {
        try
        {
            var call = File.ReadAllText($"/proc/{pid}/syscall").Split(' ')[0];
            if (call is "35" or "230") return true; // nanosleep, clock_nanosleep (x86-64)
            foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
            {
                try { if (new FileInfo(fd).LinkTarget?.StartsWith(targetProc, StringComparison.Ordinal) == true) return true; }
                catch (IOException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }

    public static ProfRun RunOnce(Bench bench, ProfTarget target, ProfSide side, int iterations, Py? p315)
    {
        using var workload = Child.Start([.. target.Command, SplitWorkload(bench), iterations.ToString()], env: target.Env);
        var ready = workload.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException($"workload did not start: {string.Join(" | ", workload.Err)}");
        var pid = ready.Line.Split(' ')[1];
        var outFile = bench.TempFile("prof");
        Child? tool = null;
        PeakRss? rss = null;
        string? note = null;
        try
        {
            var hz = side.Hz.ToString();
            switch (side.Tool)
            {
                case Profiler.Pyprobe or Profiler.PyprobeNative or Profiler.PyprobeKernel:
                    string[] native = side.Tool switch { Profiler.PyprobeNative => ["--native"], Profiler.PyprobeKernel => ["--kernel"], _ => [] };
                    tool = Child.Start([bench.Pyprobe, "record", .. native, "-p", pid, "-r", hz, "--format", "collapsed", "-o", outFile]);
                    Cases.WaitAttached(tool);
                    break;
                case Profiler.Sampler315:
                    var py = p315 ?? throw new InvalidOperationException("no 3.15 interpreter");
                    tool = Child.Start([.. py.Command, "-m", "profiling.sampling", "attach", "-r", hz, "--mode", "cpu", "--collapsed", "-o", outFile, pid], env: py.Env);
                    SettleSilent(tool, pid);
                    break;
                case Profiler.Austin:
                    tool = Child.Start([AustinLauncher, "-s", "-i", side.AustinInterval, "-o", outFile, "-p", pid]);
                    SettleSilent(tool, pid);
                    break;
                case Profiler.Bpftrace:
                    tool = Child.Start(["bpftrace", "-e", $"profile:hz:{hz} {{ }}"]);
                    if (tool.WaitLine(l => l.StartsWith("Attaching", StringComparison.Ordinal), TimeSpan.FromSeconds(60)) is null)
                        throw new InvalidOperationException($"bpftrace did not attach: {string.Join(" | ", tool.Err)}");
                    Thread.Sleep(bench.BpftraceSettle);
                    break;
            }
            if (tool is not null && tool.Process.HasExited)
                throw new InvalidOperationException($"{side.Label} exited before the work: {string.Join(" | ", tool.Out.Concat(tool.Err).TakeLast(3))}");
            if (tool is not null) rss = new PeakRss(tool.Pid);

            var cpu0 = tool is null ? 0 : ProcessCpu.OnCpuNs(tool.Pid);
            var bpf0 = tool is null ? default : ProcessCpu.BpfStats(tool.Pid);
            workload.WriteLine("go");
            var result = workload.WaitLine(l => l.StartsWith("result ", StringComparison.Ordinal), TimeSpan.FromMinutes(5))
                ?? throw new InvalidOperationException($"workload printed no result: {string.Join(" | ", workload.Err)}");
            var cpu1 = tool is null ? 0 : ProcessCpu.OnCpuNs(tool.Pid);
            var bpf1 = tool is null ? default : ProcessCpu.BpfStats(tool.Pid);
            var r = result.Line.Split(' ').Skip(1).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture));
            var wall = r["end"] - r["start"];

            // The target exits when stdin closes; pyprobe, the sampler and austin then finish and write their profiles.
            workload.CloseInput();
            workload.Wait(TimeSpan.FromSeconds(30));
            if (tool is not null)
            {
                if (side.Tool == Profiler.Bpftrace) tool.Signal(Native.SIGINT);
                if (!tool.Wait(TimeSpan.FromSeconds(60))) note = "profiler did not exit; killed";
                else if (tool.Process.ExitCode != 0) note = $"profiler exit code {tool.Process.ExitCode}";
            }
            var counts = side.Tool is Profiler.None or Profiler.Bpftrace ? null : CollapsedStacks.HotCold(outFile, side.Tool);
            return new ProfRun(side, wall, r["cpu"],
                tool is null ? null : (cpu1 - cpu0) / 1e9,
                rss?.Stop(),
                side.Tool is Profiler.Pyprobe or Profiler.PyprobeNative or Profiler.PyprobeKernel or Profiler.Bpftrace ? bpf1.RunTimeNs - bpf0.RunTimeNs : null,
                side.Tool is Profiler.Pyprobe or Profiler.PyprobeNative or Profiler.PyprobeKernel or Profiler.Bpftrace ? bpf1.RunCount - bpf0.RunCount : null,
                counts is { Hot: > 0 } or { Cold: > 0 } ? counts.Value.Hot / (counts.Value.Hot + counts.Value.Cold) : null,
                r["hot"] / (r["hot"] + r["cold"]),
                counts?.Samples,
                note ?? (counts is { Samples: 0 } ? "no samples in the profile" : null));
        }
        finally
        {
            rss?.Stop();
            tool?.Dispose();
            File.Delete(outFile);
        }
    }
}

/// <summary>The CPU a process used, and what its BPF programs ran, from /proc.</summary>
internal static class ProcessCpu
{
    /// <summary>Nanoseconds on a CPU, user and kernel, summed over the live threads (/proc/PID/task/*/schedstat, exact where /proc/PID/stat has 10 ms ticks).</summary>
    public static long OnCpuNs(int pid)
    {
        long total = 0;
        try
        {
            foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
            {
                try { total += long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0]); }
                catch (IOException) { } // the thread ended
            }
        }
        catch (DirectoryNotFoundException) { }
        return total;
    }

    /// <summary>run_time_ns and run_cnt summed over the BPF programs the process holds open (fdinfo; counted only while kernel.bpf_stats_enabled is 1).</summary>
    public static (long RunTimeNs, long RunCount) BpfStats(int pid)
    {
        long time = 0, count = 0;
        var seen = new HashSet<string>();
        try
        {
            foreach (var path in Directory.GetFiles($"/proc/{pid}/fdinfo"))
            {
                string[] lines;
                try { lines = File.ReadAllLines(path); } catch (IOException) { continue; }
                // First value of each key: other kinds of fd (epoll) repeat keys.
                var fields = new Dictionary<string, string>();
                foreach (var p in lines.Select(l => l.Split(':', 2)).Where(p => p.Length == 2)) fields.TryAdd(p[0].Trim(), p[1].Trim());
                if (!fields.TryGetValue("prog_id", out var id) || !seen.Add(id)) continue;
                if (fields.TryGetValue("run_time_ns", out var t)) time += long.Parse(t);
                if (fields.TryGetValue("run_cnt", out var c)) count += long.Parse(c);
            }
        }
        catch (DirectoryNotFoundException) { }
        return (time, count);
    }
}

/// <summary>Polls a process's VmHWM until stopped or the process ends; the last value read is its peak.</summary>
internal sealed class PeakRss
{
    private readonly int _pid;
    private long _peak;
    private volatile bool _stop;
    private readonly Thread _thread;

    public PeakRss(int pid)
    {
        _pid = pid;
        _thread = new Thread(Poll) { IsBackground = true };
        _thread.Start();
    }

    private void Poll()
    {
        while (!_stop)
        {
            var v = Native.PeakRssKb(_pid);
            if (v == 0) return;
            Interlocked.Exchange(ref _peak, Math.Max(Interlocked.Read(ref _peak), v));
            Thread.Sleep(10);
        }
    }

    public long? Stop()
    {
        _stop = true;
        _thread.Join();
        var peak = Interlocked.Read(ref _peak);
        return peak > 0 ? peak : null;
    }
}

/// <summary>hot() and cold() in the collapsed outputs of pyprobe (FUNC (FILE:LINE)), the 3.15 sampler (FILE:FUNC:LINE) and austin (P..;T..;FILE:FUNC:LINE).</summary>
internal static class CollapsedStacks
{
    /// <param name="Hot">sample weight of stacks through hot()</param>
    /// <param name="Samples">samples in the profile (austin: lines, each a sample; its weights are microseconds)</param>
    public static (double Hot, double Cold, double Samples)? HotCold(string path, Profiler tool)
    {
        if (!File.Exists(path)) return null;
        double hot = 0, cold = 0, samples = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var space = line.LastIndexOf(' ');
            if (space < 0 || !double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var weight)) continue;
            samples += tool == Profiler.Austin ? 1 : weight;
            var functions = line[..space].Split(';').Select(f => Function(f, tool)).ToList();
            if (functions.Contains("hot")) hot += weight;
            else if (functions.Contains("cold")) cold += weight;
        }
        return (hot, cold, samples);
    }

    private static string Function(string frame, Profiler tool)
    {
        if (tool is Profiler.Pyprobe or Profiler.PyprobeNative or Profiler.PyprobeKernel)
        {
            var paren = frame.IndexOf(" (", StringComparison.Ordinal);
            return paren < 0 ? frame : frame[..paren];
        }
        var parts = frame.Split(':');
        return parts.Length >= 3 ? parts[^2] : frame;
    }
}
