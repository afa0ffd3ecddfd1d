using System.Globalization;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>pyprobe top where no function events can be had (or --sample): it samples, says so, and shows own/total shares.</summary>
public class SampledTopTests
{
    private static readonly string Script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "cpu_split.py");

    /// <remarks>pyenv 3.12 has no probes and, with --no-write, no eval-frame hook either: nothing gives function events.</remarks>
    /// <param name="toFile">-o FILE: the reports go there, not to stdout (they once went to stdout whatever -o said).</param>
    [Theory]
    [InlineData("/root/.pyenv/versions/3.12.1/bin/python3.12", false, false)]
    [InlineData("/root/.pyenv/versions/3.9.18/bin/python3.9", true, true)]
    public void WithoutFunctionEventsTopShowsSampledShares(string python, bool askForSampling, bool toFile)
    {
        if (!File.Exists(python)) Assert.Fail($"{python} is missing: the pyenv builds are part of this machine");
        using var target = RunningProcess.PythonScript(python, Script, "60");
        Thread.Sleep(300);
        string[] args = askForSampling
            ? ["top", "-p", target.Pid.ToString(), "--duration", "3.5", "--sample", "-r", "199"]
            : ["top", "-p", target.Pid.ToString(), "--duration", "3.5", "--no-write"];
        var file = Path.Combine(Path.GetTempPath(), $"pyprobe-sampled-top-{Environment.ProcessId}.txt");
        var result = PyprobeBinary.Run(toFile ? [.. args, "-o", file] : args, timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());
        var why = askForSampling ? "sampling at 199 Hz: asked for with --sample" : "sampling at 99 Hz: no function events here";
        if (toFile) Assert.Equal("", result.Stdout);
        var text = toFile ? File.ReadAllText(file) : result.Stdout;
        if (toFile) File.Delete(file);
        var reports = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.True(reports.Length >= 3, result.ToString());
        Assert.All(reports, r => Assert.Contains(why, r));
        if (!askForSampling) Assert.Contains("top samples the stacks instead", result.Stderr);
        // Over the whole run: spin() is where the time goes, heavy() has about three quarters of it.
        long Column(string function, int column) => reports.Sum(r => r.Split('\n')
            .Where(l => l.EndsWith($"({Script}:{function})", StringComparison.Ordinal) || Regex.IsMatch(l, $@"\s{function} \("))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[column])).Sum());
        var spinOwn = Column("spin", 2);
        var heavy = Column("heavy", 3);
        var light = Column("light", 3);
        Assert.True(spinOwn >= 100, result.ToString());
        Assert.InRange((double)heavy / (heavy + light), 0.65, 0.85);
        Assert.Matches(@"Detached after 3\.\d\d s: \d+ samples with a Python stack of 1 process", result.Stderr);
    }

    /// <summary>
    /// %GIL: of the samples in which a function itself ran, the share whose thread held the GIL, told in the kernel at each
    /// sample (the runtime's holder up to 3.11, the interpreter's GIL from 3.12). Of a thread spinning in Python and one
    /// hashing with the GIL released, spin() shows ~100% and hasher() ~0%; each report's heading gives the share over all samples.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.10.13")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EachFunctionSaysHowMuchOfItsTimeHeldTheGil(string interpreter)
    {
        var python = CachedPythons.Executable(interpreter);
        var script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "gil_split.py");
        using var target = RunningProcess.PythonScript(python, script);
        Thread.Sleep(500);
        var result = PyprobeBinary.Run(["top", "--sample", "-r", "199", "-p", target.Pid.ToString(), "--duration", "3.5"], timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());
        var reports = result.Stdout.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.True(reports.Length >= 3, result.ToString());
        Assert.All(reports, r => Assert.Matches(@"samples of \d+ functions, GIL held in (\d+\.\d%|-)\n", r));

        // OWN and %GIL of a function's rows over every report: the samples in which it ran itself, and of them those that held the GIL.
        (long Own, long Held) Gil(string function)
        {
            var rows = reports.SelectMany(r => r.Split('\n')).Where(l => Regex.IsMatch(l, $@"\s{function} \({Regex.Escape(script)}:\d+\)$"))
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            return (rows.Sum(c => long.Parse(c[2])), rows.Sum(c => (long)Math.Round(long.Parse(c[2]) * double.Parse(c[4].TrimEnd('%'), CultureInfo.InvariantCulture) / 100)));
        }
        var (spin, spinHeld) = Gil("spin");
        var (hasher, hasherHeld) = Gil("hasher");
        Assert.True(spin >= 100 && hasher >= 100, $"spin {spin}, hasher {hasher} samples: {result}");
        Assert.True(spinHeld >= spin * 98 / 100, $"spin held the GIL in {spinHeld} of {spin}: {result}");
        Assert.True(hasherHeld <= Math.Max(3, hasher / 20), $"hasher held the GIL in {hasherHeld} of {hasher}: {result}");
    }

    /// <summary>
    /// top --native: the C functions under the Python lines are rows of their own, as py-spy top --native shows them. Of
    /// native_calls.py's compress(), nearly all the time is libz's (deflate and the static functions it calls), which runs
    /// with the GIL released, and compress() itself (its Python line) has almost none of its own.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void NativeShowsTheCFunctionsAsRowsOfTheirOwn(string interpreter)
    {
        var script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "native_calls.py");
        using var target = RunningProcess.PythonScript(CachedPythons.Executable(interpreter), script);
        Thread.Sleep(1500); // past the workload's set-up (building its inputs)
        var result = PyprobeBinary.Run(["top", "--native", "-r", "199", "-p", target.Pid.ToString(), "--duration", "3.5"], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        var reports = result.Stdout.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.True(reports.Length >= 3, result.ToString());
        Assert.All(reports, r => Assert.Contains("(sampling at 199 Hz: with C frames, asked for with --native)", r));
        var rows = reports.SelectMany(r => r.Split('\n').Skip(2)).Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length == 6).ToList();
        long Own(Func<string, bool> function) => rows.Where(c => function(c[5])).Sum(c => long.Parse(c[2]));
        long Held(Func<string, bool> function) => rows.Where(c => function(c[5]) && c[4] != "-")
            .Sum(c => (long)Math.Round(long.Parse(c[2]) * double.Parse(c[4].TrimEnd('%'), CultureInfo.InvariantCulture) / 100));
        long Total(string function) => rows.Where(c => c[5].StartsWith(function, StringComparison.Ordinal)).Sum(c => long.Parse(c[3]));

        static bool InLibz(string f) => Regex.IsMatch(f, @" \(libz\.so[.\d]*\)$");
        var compress = Total("compress (");
        Assert.True(compress >= 100, result.ToString());
        Assert.Contains(rows, c => Regex.IsMatch(c[5], @"^deflate \(libz\.so[.\d]*\)$"));
        Assert.True(Own(InLibz) >= compress * 8 / 10, $"libz has {Own(InLibz)} own samples of compress()'s {compress}: {result}");
        Assert.True(Own(f => f.StartsWith("compress (", StringComparison.Ordinal)) <= compress / 10, result.ToString());
        Assert.True(Held(InLibz) <= Math.Max(3, Own(InLibz) / 20), $"libz held the GIL in {Held(InLibz)} of {Own(InLibz)}: {result}");
        Assert.Contains(rows, c => c[5].Contains("(libcrypto.so", StringComparison.Ordinal));
    }

    /// <summary>
    /// top --kernel: the kernel's functions are rows of their own. kernel_calls.py's stat_loop() spends a good part of its
    /// time in stat() system calls: kernel rows own a tenth of its samples at least, and the system call's entry is in
    /// their totals.
    /// </summary>
    [Fact]
    public void KernelShowsTheKernelsFunctionsAsRowsOfTheirOwn()
    {
        var script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "kernel_calls.py");
        using var target = RunningProcess.PythonScript(CachedPythons.Executable("pyenv:3.12.1"), script);
        Thread.Sleep(300);
        var result = PyprobeBinary.Run(["top", "--kernel", "-r", "199", "--top", "200", "-p", target.Pid.ToString(), "--duration", "3.5"], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        var reports = result.Stdout.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(reports, r => Assert.Contains("(sampling at 199 Hz: with C and kernel frames, asked for with --kernel)", r));
        var rows = reports.SelectMany(r => r.Split('\n').Skip(2)).Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length == 6).ToList();
        static bool InKernel(string f) => f.EndsWith(" ([kernel])", StringComparison.Ordinal);
        var statLoop = rows.Where(c => c[5].StartsWith("stat_loop (", StringComparison.Ordinal)).Sum(c => long.Parse(c[3]));
        var kernelOwn = rows.Where(c => InKernel(c[5])).Sum(c => long.Parse(c[2]));
        Assert.True(statLoop >= 100, result.ToString());
        Assert.True(kernelOwn >= statLoop / 10, $"kernel rows own {kernelOwn} of stat_loop's {statLoop}: {result}");
        Assert.Contains(rows, c => c[5] == "do_syscall_64 ([kernel])" && long.Parse(c[3]) > 0);
    }

    /// <summary>Counts were asked for: where no function events can be had, that is the error, not samples in their place.</summary>
    [Fact]
    public void CountsWithoutFunctionEventsAreAnErrorNotSamples()
    {
        const string python = "/root/.pyenv/versions/3.12.1/bin/python3.12";
        if (!File.Exists(python)) Assert.Fail($"{python} is missing: the pyenv builds are part of this machine");
        using var target = RunningProcess.PythonScript(python, Script, "60");
        Thread.Sleep(300);
        var result = PyprobeBinary.Run(["top", "--count", "--no-write", "-p", target.Pid.ToString(), "--duration", "2"], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("pyprobe: ", line);
        Assert.DoesNotContain("samples", line);
        Assert.Empty(result.Stdout);
    }

    /// <summary>
    /// top --tasks: rows are asyncio tasks. On Workloads/task_tree.py (CPU burnt 3:1:1 in leaf, right and shared, each
    /// awaited: leaf by left, shared by waiter-a and waiter-b, all under main's TaskGroup) leaf, right and shared own the
    /// samples taken in tasks about 60/20/20; left's total is leaf's and its own, main's total every task sample (but
    /// for shared's first step, before anyone awaits it) while main itself owns almost none. Through the thread state's task on 3.14, the task found from its coroutine on pyenv 3.12.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void TasksAreRowsOfTheirOwn(string interpreter)
    {
        var script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_tree.py");
        using var target = RunningProcess.PythonScript(CachedPythons.Executable(interpreter), script);
        Thread.Sleep(1000); // past start-up: the tasks run
        var result = PyprobeBinary.Run(["top", "--tasks", "-r", "199", "--duration", "3.5", "-p", target.Pid.ToString(CultureInfo.InvariantCulture)], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        var reports = result.Stdout.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Where(r => r.Contains("pyprobe top", StringComparison.Ordinal)).ToList();
        Assert.True(reports.Count >= 3, result.ToString());
        Assert.All(reports, r => Assert.Contains("(sampling at 199 Hz: asyncio tasks, asked for with --tasks)", r));
        Assert.All(reports, r => Assert.Contains("%GIL  TASK", r));
        var rows = reports.SelectMany(r => r.Split('\n').Skip(2)).Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length == 6).ToList();
        long Own(string task) => rows.Where(c => c[5] == task).Sum(c => long.Parse(c[2], CultureInfo.InvariantCulture));
        long Total(string task) => rows.Where(c => c[5] == task).Sum(c => long.Parse(c[3], CultureInfo.InvariantCulture));
        var (leaf, right, shared) = (Own("leaf"), Own("right"), Own("shared (2 parents)"));
        var inTasks = rows.Sum(c => long.Parse(c[2], CultureInfo.InvariantCulture));
        Assert.True(leaf + right + shared >= 400 && leaf + right + shared >= inTasks * 95 / 100, result.ToString());
        Assert.InRange(100.0 * leaf / (leaf + right + shared), 52, 68);
        Assert.InRange(100.0 * right / (leaf + right + shared), 13, 27);
        Assert.InRange(100.0 * shared / (leaf + right + shared), 13, 27);
        Assert.Equal(Total("leaf") + Own("left"), Total("left"));
        // shared's first step runs before the waiters await it (then it is a root of its own): a few samples at most.
        Assert.InRange(Total("waiter-a"), (Total("shared (2 parents)") + Own("waiter-a")) * 95 / 100, Total("shared (2 parents)") + Own("waiter-a"));
        Assert.InRange(Total("main"), inTasks * 98 / 100, inTasks);
        Assert.True(Own("main") <= inTasks / 50, result.ToString());
    }
}
