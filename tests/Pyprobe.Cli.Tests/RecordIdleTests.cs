using System.Diagnostics;
using System.Globalization;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `pyprobe record --idle` through dist/pyprobe: a program whose main thread sleeps in sleeper() while a second
/// thread burns CPU in burn(). CPU profiles have burn() only; wall-clock profiles have each near half.
/// </summary>
public class RecordIdleTests
{
    // tests/Workloads/busy_and_sleeping.py, shared with the sampler's own tests, copied next to this assembly.
    private static readonly string Workload = Path.Combine(AppContext.BaseDirectory, "Workloads", "busy_and_sleeping.py");

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void IdleRecordsTheSleepingThreadAndCpuModeDoesNot(string interpreter)
    {
        var command = CommandFor(interpreter);
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        using var workload = Process.Start(info)!;
        try
        {
            Thread.Sleep(300);
            RecordBothWays(workload.Id.ToString(CultureInfo.InvariantCulture));
        }
        finally
        {
            workload.Kill();
            workload.WaitForExit();
        }
    }

    /// <summary>
    /// record --idle --native: where a thread waits is C code (the sleep's system call in libc), copied and unwound at each
    /// switch-out as at each CPU sample: the sleeping thread's spans end in libc under sleeper(), after its Python frames.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.9")]
    [InlineData("debian:3.14")]
    public void IdleWithNativeShowsTheCThatAThreadWaitsIn(string interpreter)
    {
        var command = CommandFor(interpreter);
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        using var workload = Process.Start(info)!;
        try
        {
            Thread.Sleep(300);
            var pid = workload.Id.ToString(CultureInfo.InvariantCulture);
            using var file = new TempFile();
            var result = PyprobeBinary.Run(["record", "--idle", "--native", "--threads", "--format", "collapsed", "-o", file.Path, "--duration", "3", "-p", pid], timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            // Wall clock: C frames for the CPU samples and for the stacks taken at a switch-out, never more than were taken.
            var native = System.Text.RegularExpressions.Regex.Match(result.Stderr, @"Native: (\d+) of (\d+) stacks taken \((\d+) CPU samples, (\d+) at a context switch\) with their C frames");
            Assert.True(native.Success, result.ToString());
            Assert.True(long.Parse(native.Groups[1].Value) <= long.Parse(native.Groups[2].Value), result.ToString());
            Assert.Equal(long.Parse(native.Groups[2].Value), long.Parse(native.Groups[3].Value) + long.Parse(native.Groups[4].Value));
            var stacks = File.ReadAllLines(file.Path).Where(l => l.Length > 0).Select(l => (Frames: l[..l.LastIndexOf(' ')].Split(';'), Count: long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))).ToList();
            static bool IsPython(string frame) => System.Text.RegularExpressions.Regex.IsMatch(frame, @":\d+\)$");
            // Below the thread root the Python frames come first: nothing of the interpreter's start is kept.
            Assert.All(stacks, s => Assert.True(s.Frames.Length > 1 && IsPython(s.Frames[1]), string.Join(";", s.Frames)));
            var sleeping = stacks.Where(s => s.Frames[0].StartsWith($"thread {pid} (", StringComparison.Ordinal) && s.Frames.Last(IsPython).StartsWith("sleeper (", StringComparison.Ordinal)).ToList();
            var inLibc = sleeping.Where(s => s.Frames.SkipWhile(f => !f.StartsWith("sleeper (", StringComparison.Ordinal)).Any(f => f.EndsWith("(libc.so.6)", StringComparison.Ordinal))).Sum(s => s.Count);
            var all = sleeping.Sum(s => s.Count);
            // The first span, open when the recording began, was read from user space without its C frames: ~0.1 s of 3.
            Assert.True(all > 0 && inLibc >= all * 8 / 10, $"{inLibc} of {all} sleeping samples end in libc: {result}");
        }
        finally
        {
            workload.Kill();
            workload.WaitForExit();
        }
    }

    private static void RecordBothWays(string pid)
    {
        using var cpuFile = new TempFile();
        var cpu = PyprobeBinary.Run(["record", "--format", "collapsed", "-o", cpuFile.Path, "--duration", "2", "-p", pid], timeout: TimeSpan.FromSeconds(60));
        Assert.True(cpu.ExitCode == 0, cpu.ToString());
        Assert.DoesNotContain("Wall clock", cpu.Stderr);
        var cpuShares = SharesByInnermostFunction(File.ReadAllLines(cpuFile.Path));
        Assert.True(cpuShares.GetValueOrDefault("burn") >= 0.97, cpu.ToString());
        // sleeper runs a few microseconds per nap: a CPU sample may land on it now and then, never more.
        var cpuTotal = File.ReadAllLines(cpuFile.Path).Where(l => l.Length > 0).Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
        Assert.True(cpuShares.GetValueOrDefault("sleeper") * cpuTotal <= Math.Max(3, 0.02 * cpuTotal), cpu.ToString());

        using var wallFile = new TempFile();
        var wall = PyprobeBinary.Run(["record", "--idle", "--threads", "--format", "collapsed", "-o", wallFile.Path, "--duration", "3", "-p", pid], timeout: TimeSpan.FromSeconds(60));
        Assert.True(wall.ExitCode == 0, wall.ToString());
        Assert.Contains("sched_switch (wall clock)", wall.Stderr);
        Assert.Contains("Wall clock: ", wall.Stderr);
        var lines = File.ReadAllLines(wallFile.Path);
        var shares = SharesByInnermostFunction(lines);
        Assert.InRange(shares.GetValueOrDefault("burn"), 0.40, 0.60);
        Assert.InRange(shares.GetValueOrDefault("sleeper"), 0.40, 0.60);
        // The main thread was asleep when the recording began (its first span read from user space): named as Python names it.
        Assert.Contains(lines, l => l.StartsWith($"thread {pid} (MainThread);<module> ({Workload}:10);sleeper ({Workload}:8) ", StringComparison.Ordinal));
        Assert.All(lines.Where(l => l.Length > 0), l => Assert.Matches(@"^thread \d+ \((MainThread|Thread-1( \(burn\))?)\);", l));
    }

    private static List<string> CommandFor(string interpreter)
    {
        var (kind, version) = (interpreter.Split(':')[0], interpreter.Split(':')[1]);
        if (kind == "debian") return CachedPythons.Get(version).Command(Workload);
        var minor = string.Join('.', version.Split('.').Take(2));
        var path = $"/root/.pyenv/versions/{version}/bin/python{minor}";
        if (!File.Exists(path)) Assert.Fail($"{path} is missing");
        return [path, Workload];
    }

    /// <summary>Collapsed lines "FRAME;...;FRAME COUNT" → share of the samples per innermost function.</summary>
    private static Dictionary<string, double> SharesByInnermostFunction(string[] lines)
    {
        var counts = new Dictionary<string, long>();
        foreach (var line in lines.Where(l => l.Length > 0))
        {
            var space = line.LastIndexOf(' ');
            var count = long.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            var innermost = line[..space].Split(';')[^1];
            var function = innermost[..innermost.IndexOf(" (", StringComparison.Ordinal)];
            counts[function] = counts.GetValueOrDefault(function) + count;
        }
        double total = counts.Values.Sum();
        return counts.ToDictionary(c => c.Key, c => c.Value / total);
    }
}
