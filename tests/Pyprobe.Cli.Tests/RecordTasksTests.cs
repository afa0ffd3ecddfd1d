namespace Pyprobe.Cli.Tests;

/// <summary>
/// record --tasks: each sample rooted at the asyncio task it ran in, read in the kernel from the thread state (3.14+).
/// Workloads/task_split.py burns the CPU in two tasks in turns, 3 ms in alpha to 1 ms in beta: 75/25.
/// </summary>
public class RecordTasksTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_split.py");

    [Theory]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EachSampleIsRootedAtItsTask(string interpreter)
    {
        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-record-tasks-{Guid.NewGuid():N}.folded");
        try
        {
            var result = PyprobeBinary.Run(["record", "--tasks", "-r", "199", "--duration", "3", "-f", "collapsed", "-o", output, "--",
                CachedPythons.Executable(interpreter), Workload], timeout: TimeSpan.FromSeconds(120));
            Assert.True(result.ExitCode == 0, result.ToString());
            var stacks = File.ReadAllLines(output).Select(l => (Frames: l[..l.LastIndexOf(' ')].Split(';'), Count: long.Parse(l[(l.LastIndexOf(' ') + 1)..]))).ToList();
            var inTasks = stacks.Where(s => s.Frames[0].StartsWith("task ", StringComparison.Ordinal)).ToList();
            var alpha = inTasks.Where(s => s.Frames[0] == "task alpha").Sum(s => s.Count);
            var beta = inTasks.Where(s => s.Frames[0] == "task beta").Sum(s => s.Count);
            Assert.True(alpha + beta >= 200, $"{alpha} + {beta} samples in the tasks: {result}");
            Assert.Equal(alpha + beta, inTasks.Sum(s => s.Count)); // no other task
            Assert.InRange(100.0 * alpha / (alpha + beta), 67, 83);
            // A task's samples are its coroutine's: alpha's burn under alpha, beta's under beta; a few land in the step
            // around it (the task is set running just before its coroutine's frame is pushed, and after it is popped).
            var outsideCoroutine = inTasks.Where(s => !s.Frames.Any(f => f.StartsWith(s.Frames[0][5..] + " (", StringComparison.Ordinal))).Sum(s => s.Count);
            Assert.True(outsideCoroutine <= (alpha + beta) / 20, $"{outsideCoroutine} of {alpha + beta} task samples outside the task's coroutine");
            Assert.DoesNotContain(inTasks, s => s.Frames[0] == "task alpha" && s.Frames.Any(f => f.StartsWith("beta (", StringComparison.Ordinal)));
            Assert.DoesNotContain(inTasks, s => s.Frames[0] == "task beta" && s.Frames.Any(f => f.StartsWith("alpha (", StringComparison.Ordinal)));
            // Outside a task (start-up, the loop between steps) a sample has no task root.
            Assert.DoesNotContain(stacks.Where(s => !s.Frames[0].StartsWith("task ", StringComparison.Ordinal)), s => s.Frames.Any(f => f.StartsWith("alpha (", StringComparison.Ordinal)));
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
