using System.Diagnostics;
using System.Globalization;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// record --tasks: each sample rooted at the asyncio task it ran in, read in the kernel from the thread state (3.14+), under
/// the tasks awaiting it. Workloads/task_split.py burns the CPU in two tasks in turns, 3 ms in alpha to 1 ms in beta: 75/25.
/// </summary>
public class RecordTasksTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_split.py");
    private static readonly string TreeWorkload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_tree.py");

    [Theory]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EachSampleIsRootedAtItsTask(string interpreter)
    {
        var stacks = Record(["--", CachedPythons.Executable(interpreter), Workload], out var result);
        // gather() makes main's task the awaiter of both: each sample goes under task Task-1 (asyncio.run's) and the
        // frame it awaits in, then its own task.
        var inTasks = stacks.Where(s => TaskRoots(s.Frames).Length > 0).ToList();
        string gatherLine = $"main ({Workload}:{LineOf(Workload, "await asyncio.gather(")})";
        Assert.All(inTasks, s => Assert.Equal(["task Task-1", gatherLine], s.Frames[..2]));
        Assert.All(inTasks, s => Assert.Equal(2, TaskRoots(s.Frames).Length));
        var alpha = inTasks.Where(s => s.Frames[2] == "task alpha").Sum(s => s.Count);
        var beta = inTasks.Where(s => s.Frames[2] == "task beta").Sum(s => s.Count);
        Assert.True(alpha + beta >= 200, $"{alpha} + {beta} samples in the tasks: {result}");
        Assert.Equal(alpha + beta, inTasks.Sum(s => s.Count)); // no other task
        Assert.InRange(100.0 * alpha / (alpha + beta), 67, 83);
        // A task's samples are its coroutine's: alpha's burn under alpha, beta's under beta; a few land in the step
        // around it (the task is set running just before its coroutine's frame is pushed, and after it is popped).
        var outsideCoroutine = inTasks.Where(s => !s.Frames.Any(f => f.StartsWith(s.Frames[2][5..] + " (", StringComparison.Ordinal))).Sum(s => s.Count);
        Assert.True(outsideCoroutine <= (alpha + beta) / 20, $"{outsideCoroutine} of {alpha + beta} task samples outside the task's coroutine");
        Assert.DoesNotContain(inTasks, s => s.Frames[2] == "task alpha" && s.Frames.Any(f => f.StartsWith("beta (", StringComparison.Ordinal)));
        Assert.DoesNotContain(inTasks, s => s.Frames[2] == "task beta" && s.Frames.Any(f => f.StartsWith("alpha (", StringComparison.Ordinal)));
        // Outside a task (start-up, the loop between steps) a sample has no task root.
        Assert.DoesNotContain(stacks.Where(s => !s.Frames[0].StartsWith("task ", StringComparison.Ordinal)), s => s.Frames.Any(f => f.StartsWith("alpha (", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Workloads/task_tree.py: a TaskGroup's tasks, one awaiting a task of its own, two awaiting one shared task; the CPU
    /// burnt 3:1:1 in leaf, right and shared. Each sample is rooted at its whole chain of awaiters, outermost first, and a
    /// task with two awaiters goes under the first by name, saying so.
    /// </summary>
    [Theory]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EachSampleIsRootedAtItsTasksAwaiters(string interpreter)
    {
        var stacks = Record(["--", CachedPythons.Executable(interpreter), TreeWorkload], out var result);
        var chains = Chains(stacks);
        string leaf = "task main;task left;task leaf", right = "task main;task right", shared = "task main;task waiter-a;task shared (2 parents)";
        // Samples of main, left or a waiter themselves (each runs a step at the start, and at the end) are a handful.
        var others = chains.Where(c => c.Key != leaf && c.Key != right && c.Key != shared).Sum(c => c.Value);
        long total = chains.GetValueOrDefault(leaf) + chains.GetValueOrDefault(right) + chains.GetValueOrDefault(shared);
        Assert.True(total >= 200 && others <= total / 50, $"{string.Join(", ", chains.Select(c => $"{c.Key}: {c.Value}"))}\n{result}");
        Assert.InRange(100.0 * chains[leaf] / total, 52, 68);
        Assert.InRange(100.0 * chains[right] / total, 13, 27);
        Assert.InRange(100.0 * chains[shared] / total, 13, 27);
        // Each awaiter is followed by the frames it awaits in: main in its TaskGroup's exit, left and waiter-a at their awaits.
        string Frame(string function, string code) => $"{function} ({TreeWorkload}:{LineOf(TreeWorkload, code)})";
        foreach (var (frames, _) in stacks.Where(s => TaskRoots(s.Frames) is [_, _, ..]))
        {
            Assert.Equal(["task main", Frame("main", "async with asyncio.TaskGroup()")], frames[..2]);
            Assert.Contains(frames[..Array.IndexOf(frames, TaskRoots(frames)[1])], f => f.StartsWith("TaskGroup.__aexit__ (", StringComparison.Ordinal));
            if (frames.Contains("task leaf")) Assert.Equal(["task left", Frame("left", "await asyncio.create_task("), "task leaf"], frames[Array.IndexOf(frames, "task left")..(Array.IndexOf(frames, "task leaf") + 1)]);
            if (frames.Contains("task shared (2 parents)")) Assert.Equal(["task waiter-a", Frame("waiter", "await shared"), "task shared (2 parents)"], frames[Array.IndexOf(frames, "task waiter-a")..(Array.IndexOf(frames, "task shared (2 parents)") + 1)]);
        }
    }

    /// <summary>
    /// Named with -p, a process that cannot be sampled is an error where it is the only one: one line saying why, exit 1,
    /// at once and no profile (it attached to nothing, then waited for the duration and exited 0).
    /// </summary>
    [Fact]
    public void APidThatCannotBeSampledAloneIsAnError()
    {
        var start = new ProcessStartInfo(CachedPythons.Executable("pyenv:3.12.1")) { UseShellExecute = false };
        foreach (var a in new[] { "-c", "import time; time.sleep(60)" }) start.ArgumentList.Add(a);
        using var python = Process.Start(start)!;
        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-record-tasks-{Guid.NewGuid():N}.folded");
        try
        {
            Thread.Sleep(300);
            var result = PyprobeBinary.Run(["record", "--tasks", "--duration", "30", "-f", "collapsed", "-o", output, "-p", python.Id.ToString(CultureInfo.InvariantCulture)], timeout: TimeSpan.FromSeconds(20));
            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.Equal($"pyprobe: process {python.Id} is not sampled: record --tasks needs CPython 3.14 or later, whose thread states name the asyncio task they run; it is 3.12.1", result.Stderr.TrimEnd('\n'));
            Assert.False(File.Exists(output));
        }
        finally
        {
            python.Kill();
            File.Delete(output);
        }
    }

    /// <summary>
    /// The chains of CPython 3.15's own sampler (<c>python -m profiling.sampling attach --async-aware --async-mode running</c>,
    /// which walks each running task's awaiters as it samples) are pyprobe's on the same process: each that holds more
    /// than 5% of either profile's task samples is in the other's too, and they are main;left;leaf, main;right and
    /// main;waiter-a;shared (2 parents).
    /// </summary>
    [Fact]
    public void TheChainsAreThoseOfCPythonsOwnSampler()
    {
        var start = new ProcessStartInfo(CachedPythons.Executable("debian:3.15")) { UseShellExecute = false };
        start.ArgumentList.Add(TreeWorkload);
        using var python = Process.Start(start)!;
        var theirsPath = Path.Combine(Path.GetTempPath(), $"pyprobe-sampler-tasks-{Guid.NewGuid():N}.folded");
        try
        {
            Thread.Sleep(500); // past start-up: the tasks run
            var ours = Chains(Record(["-p", python.Id.ToString(CultureInfo.InvariantCulture)], out _));
            var theirs = SamplerChains(python.Id, theirsPath);
            static HashSet<string> Main(Dictionary<string, long> chains) =>
                chains.Where(c => c.Value * 20 > chains.Values.Sum()).Select(c => c.Key).ToHashSet();
            string[] expected = ["task main;task left;task leaf", "task main;task right", "task main;task waiter-a;task shared (2 parents)"];
            Assert.True(Main(ours).SetEquals(expected), $"pyprobe: {string.Join(", ", ours.Select(c => $"{c.Key}: {c.Value}"))}");
            Assert.True(Main(theirs).SetEquals(expected), $"the 3.15 sampler: {string.Join(", ", theirs.Select(c => $"{c.Key}: {c.Value}"))}");
        }
        finally
        {
            python.Kill();
            File.Delete(theirsPath);
        }
    }

    /// <summary>The 3.15 sampler's task chains for 2 s of <paramref name="pid"/>, written to <paramref name="path"/>.</summary>
    private static Dictionary<string, long> SamplerChains(int pid, string path)
    {
        var sampler = new ProcessStartInfo(CachedPythons.Executable("debian:3.15")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-m", "profiling.sampling", "attach", "--async-aware", "--async-mode", "running", "-d", "2", "--collapsed", "-o", path, pid.ToString(CultureInfo.InvariantCulture) })
            sampler.ArgumentList.Add(a);
        using (var run = Process.Start(sampler)!)
        {
            var errors = run.StandardError.ReadToEndAsync();
            run.StandardOutput.ReadToEnd();
            Assert.True(run.WaitForExit(60_000), "the 3.15 sampler did not end");
            Assert.True(run.ExitCode == 0, errors.Result);
        }
        // Its lines: tid:N;<task>:NAME:0;file:function:line;...;<task>:NAME:0;... COUNT
        return File.ReadAllLines(path)
            .Select(l => (Chain: string.Join(";", l[..l.LastIndexOf(' ')].Split(';').Where(f => f.StartsWith("<task>:", StringComparison.Ordinal)).Select(f => "task " + f["<task>:".Length..f.LastIndexOf(':')])),
                Count: long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
            .Where(c => c.Chain.Length > 0).GroupBy(c => c.Chain).ToDictionary(g => g.Key, g => g.Sum(c => c.Count));
    }

    /// <summary>Samples rooted at tasks, by their chain of task roots (task main;task left;task leaf).</summary>
    private static Dictionary<string, long> Chains(List<(string[] Frames, long Count)> stacks) =>
        stacks.Where(s => TaskRoots(s.Frames).Length > 0).GroupBy(s => string.Join(";", TaskRoots(s.Frames)))
            .ToDictionary(g => g.Key, g => g.Sum(s => s.Count));

    /// <summary>A stack's task roots (a function's frame is "NAME (FILE:LINE)", and a name holds no space).</summary>
    private static string[] TaskRoots(string[] frames) => frames.Where(f => f.StartsWith("task ", StringComparison.Ordinal)).ToArray();

    private static int LineOf(string file, string code) => Array.FindIndex(File.ReadAllLines(file), l => l.Contains(code, StringComparison.Ordinal)) + 1;

    /// <summary>record --tasks at 199 Hz for 3 s of <paramref name="target"/> (-p PID, or -- COMMAND), as collapsed stacks.</summary>
    private static List<(string[] Frames, long Count)> Record(string[] target, out CliResult result)
    {
        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-record-tasks-{Guid.NewGuid():N}.folded");
        try
        {
            result = PyprobeBinary.Run(["record", "--tasks", "-r", "199", "--duration", "3", "-f", "collapsed", "-o", output, .. target], timeout: TimeSpan.FromSeconds(120));
            Assert.True(result.ExitCode == 0, result.ToString());
            return File.ReadAllLines(output).Select(l => (l[..l.LastIndexOf(' ')].Split(';'), long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))).ToList();
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void BeforePython314ThereIsNoRunningTaskToRead()
    {
        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-record-tasks-{Guid.NewGuid():N}.folded");
        var result = PyprobeBinary.Run(["record", "--tasks", "--duration", "1", "-f", "collapsed", "-o", output, "--",
            CachedPythons.Executable("pyenv:3.12.1"), Workload], timeout: TimeSpan.FromSeconds(60));
        File.Delete(output);
        Assert.Contains("record --tasks needs CPython 3.14 or later, whose thread states name the asyncio task they run; it is 3.12.1", result.Stderr);
        Assert.Contains("no profile was written", result.Stderr);
    }
}
