using System.Diagnostics;
using System.Globalization;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// record --tasks: each sample rooted at the asyncio task it ran in, read in the kernel from the thread state (3.14+) or
/// found by the outermost coroutine the kernel's walk met (3.8–3.13), under the tasks awaiting it. Workloads/task_split.py burns the CPU in two tasks in turns, 3 ms in alpha to 1 ms in beta: 75/25.
/// </summary>
public class RecordTasksTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_split.py");
    private static readonly string TreeWorkload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_tree.py");
    private static readonly string WaitsWorkload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_waits.py");

    [Theory]
    [InlineData("pyenv:3.8.18")]
    [InlineData("debian:3.9")]
    [InlineData("pyenv:3.10.13")]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.13")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EachSampleIsRootedAtItsTask(string interpreter)
    {
        var stacks = Record(["--", CachedPythons.Executable(interpreter), Workload], out var result);
        // gather() makes main's task the awaiter of both: each sample goes under task Task-1 (asyncio.run's) and the
        // frame it awaits in, then its own task.
        var inTasks = stacks.Where(s => TaskRoots(s.Frames).Length > 0).ToList();
        // main's own few samples, where it makes the two tasks before it awaits them (it runs a few microseconds).
        var mainOwn = inTasks.Where(s => TaskRoots(s.Frames) is ["task Task-1"]).ToList();
        Assert.All(mainOwn, s => Assert.StartsWith($"main ({Workload}:", s.Frames[1], StringComparison.Ordinal));
        Assert.True(mainOwn.Sum(s => s.Count) <= 2, string.Join("\n", mainOwn.Select(s => string.Join(";", s.Frames))));
        inTasks = [.. inTasks.Except(mainOwn)];
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
        // Where the coroutine is on the stack, the sample starts at it: the loop's frames that ran the step are left out.
        var atCoroutine = inTasks.Where(s => s.Frames[3].StartsWith(s.Frames[2][5..] + " (", StringComparison.Ordinal)).Sum(s => s.Count);
        Assert.Equal(alpha + beta - outsideCoroutine, atCoroutine);
        Assert.DoesNotContain(inTasks, s => s.Frames[3].StartsWith(s.Frames[2][5..] + " (", StringComparison.Ordinal) && s.Frames.Any(f => f.StartsWith("<module> (", StringComparison.Ordinal)));
        Assert.DoesNotContain(inTasks, s => s.Frames[2] == "task alpha" && s.Frames.Any(f => f.StartsWith("beta (", StringComparison.Ordinal)));
        Assert.DoesNotContain(inTasks, s => s.Frames[2] == "task beta" && s.Frames.Any(f => f.StartsWith("alpha (", StringComparison.Ordinal)));
        // Outside a task (start-up, the loop between steps) a sample has no task root.
        Assert.DoesNotContain(stacks.Where(s => !s.Frames[0].StartsWith("task ", StringComparison.Ordinal)), s => s.Frames.Any(f => f.StartsWith("alpha (", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Workloads/task_churn.py: tasks of 20 ms one after another, alternately even-N (in even_job) and odd-N (in odd_job),
    /// N % 3 + 1 calls of nest() deep, each often at the addresses (task, coroutine, name) one before freed. Every sample
    /// in a job is under its own task, by kind and depth: the kernel copies the running task's name with each sample, so a
    /// task kept from an earlier read is given again only if it is the sample's (by addresses alone, 11–18% of the named
    /// samples went under the task before them at the same addresses; checked by a read at the drain, 1 in 195 in one run
    /// of six), and a task that ended before its samples were drained goes by the name it had, alone (its awaiter is not
    /// known any more; before the copy, 3.13 named ~54% of these samples). Tasks read while they run are under main.
    /// </summary>
    /// With <paramref name="unnamed"/> the tasks go by asyncio's own names (Task-N; from 3.12 a task keeps only the number
    /// until its name is asked for, and the copy is of that int).
    [Theory]
    [InlineData("debian:3.9", false)]
    [InlineData("debian:3.9", true)]
    [InlineData("pyenv:3.12.1", true)]
    [InlineData("debian:3.13", false)]
    [InlineData("debian:3.14", false)]
    [InlineData("debian:3.14", true)]
    public void ShortLivedTasksAreNotMistakenForEachOther(string interpreter, bool unnamed)
    {
        var churn = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_churn.py");
        var stacks = Record(["--", CachedPythons.Executable(interpreter), churn, "0.02", .. unnamed ? new[] { "unnamed" } : []], out var result);
        long named = 0, jobs = 0, underMain = 0;
        var mistaken = new List<string>();
        foreach (var (frames, count) in stacks)
        {
            var at = Array.FindIndex(frames, f => f.StartsWith("even_job (", StringComparison.Ordinal) || f.StartsWith("odd_job (", StringComparison.Ordinal));
            if (at < 0) continue;
            // From 3.11 calling a coroutine function pushes its frame for a moment, until its first instruction makes the
            // coroutine object: a sample then is main's, making the job, not the job's task running it.
            if (at > 0 && frames[at - 1].StartsWith("main (", StringComparison.Ordinal)) continue;
            var job = frames[at];
            jobs += count;
            var task = TaskRoots(frames) is [.., var last] ? last : null;
            if (task is null) continue;
            if (TaskRoots(frames) is ["task Task-1", _]) underMain += count;
            var n = int.Parse(task[(task.IndexOf('-') + 1)..], CultureInfo.InvariantCulture) - (unnamed ? 2 : 0);
            // In burn, as deep as the task's N says; between two calls of nest() (the sample caught one being made or
            // left), no deeper.
            var depth = frames.Count(f => f.StartsWith("nest (", StringComparison.Ordinal));
            var depthAgrees = frames[^1].StartsWith("burn (", StringComparison.Ordinal) ? depth == n % 3 + 1 : depth <= n % 3 + 1;
            var kind = n % 2 == 0 ? "even" : "odd";
            if (!task.StartsWith(unnamed ? "task Task-" : $"task {kind}-", StringComparison.Ordinal) || !job.StartsWith(kind + "_job (", StringComparison.Ordinal)
                || !depthAgrees)
                mistaken.AddRange(Enumerable.Repeat(string.Join(";", frames), (int)count));
            named += count;
        }
        // The floor is a quarter of the recording: on a loaded machine the workload gets half a CPU or less.
        Assert.True(jobs >= 3 * 199 / 4 && named == jobs, $"{named} of {jobs} samples in the jobs under their task\n{result}");
        Assert.True(mistaken.Count == 0, $"{mistaken.Count} of {named} under another task:\n{string.Join("\n", mistaken.Distinct())}");
        Assert.True(underMain >= named / 2, $"{underMain} of {named} under main's task\n{result}");
    }

    /// <summary>
    /// Workloads/task_crowd.py with 2000 waiting tasks: a read of every task then costs 10–60 ms of pyprobe's CPU, so
    /// reads are held to a twentieth of the time (one each 0.2–1.2 s, and each second), and the tasks late-N, made one
    /// after another, each run a while before a read finds them. Their samples are still under main (all but 1%), which
    /// awaits each: a sample whose task no read has found yet waits for the next read (held: without it up to 158 of
    /// ~550 went alone). Each late task runs 2 s, longer than the longest wait for a read, so one finds it. From 3.14 the
    /// task's awaiters are read at its first sample, not by reading every task; there a sample drained just after its
    /// task ended, when the chains kept had just been cleared for a fresh read, goes under the chain read before the
    /// clearing (without it 1 of ~500 went alone).
    /// </summary>
    [Theory]
    [InlineData("debian:3.9")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.13")]
    [InlineData("debian:3.14")]
    public void ATaskMadeBetweenReadsIsUnderItsAwaiterFromItsFirstSample(string interpreter)
    {
        var crowd = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "task_crowd.py");
        var stacks = Record(["--", CachedPythons.Executable(interpreter), crowd, "2000", "2"], out var result);
        // Every sample in a late task's coroutine, whatever it went under (a task alone, or none); but for main's, making
        // the coroutine (from 3.11 its frame is pushed for a moment, until its first instruction makes the object).
        var late = stacks.Where(s => Array.FindIndex(s.Frames, f => f.StartsWith("late (", StringComparison.Ordinal)) is var at && at >= 0
            && !(at > 0 && s.Frames[at - 1].StartsWith("main (", StringComparison.Ordinal) && !s.Frames[..at].Any(f => f.StartsWith("task late-", StringComparison.Ordinal)))).ToList();
        string awaiting = $"main ({crowd}:{LineOf(crowd, "await asyncio.create_task(late()")})";
        var elsewhere = late.Where(s => !(s.Frames.Length > 3 && s.Frames[0] == "task main" && s.Frames[1] == awaiting && s.Frames[2].StartsWith("task late-", StringComparison.Ordinal))).ToList();
        var total = late.Sum(s => s.Count);
        // The floor is a quarter of the recording: on a loaded machine the workload gets half a CPU or less.
        Assert.True(total >= 3 * 199 / 4, $"{total} samples in the late tasks\n{result}");
        // Under a loaded CI run 2 of 359 still went alone (late-0's, cause not found: not reproduced in 40 runs beside
        // busy loops); without holding, up to 158 of ~550 do, 36 of ~520 on 3.13.
        Assert.True(elsewhere.Sum(s => s.Count) <= total / 100, $"{elsewhere.Sum(s => s.Count)} of {total} late samples not under main:\n{string.Join("\n", elsewhere.Select(s => $"{s.Count} {string.Join(";", s.Frames)}"))}");
    }

    /// <summary>
    /// Workloads/task_tree.py: a TaskGroup's tasks, one awaiting a task of its own, two awaiting one shared task; the CPU
    /// burnt 3:1:1 in leaf, right and shared. Each sample is rooted at its whole chain of awaiters, outermost first, and a
    /// task with two awaiters goes under the first by name, saying so.
    /// </summary>
    [Theory]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.13")]
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
        // The running task's own frames start at its coroutine (spin), not at the loop's <module>;run;…;Handle._run, but
        // for a sample at the very start or end of a step.
        var atCoroutine = stacks.Where(s => TaskRoots(s.Frames).Length > 0 && OwnFrames(s.Frames) is [var first, ..] && first.StartsWith("spin (", StringComparison.Ordinal)).Sum(s => s.Count);
        Assert.True(atCoroutine >= total * 19 / 20, $"{atCoroutine} of {total} task samples start at the task's coroutine\n{result}");
        Assert.DoesNotContain(stacks, s => TaskRoots(s.Frames).Length > 0 && OwnFrames(s.Frames) is [var first, ..] && first.StartsWith("spin (", StringComparison.Ordinal)
            && s.Frames.Any(f => f.StartsWith("Handle._run (", StringComparison.Ordinal)));
        foreach (var (frames, _) in stacks.Where(s => TaskRoots(s.Frames) is [_, _, ..]))
        {
            Assert.Equal(["task main", Frame("main", "async with asyncio.TaskGroup()")], frames[..2]);
            Assert.Contains(frames[..Array.IndexOf(frames, TaskRoots(frames)[1])], f => f.StartsWith("TaskGroup.__aexit__ (", StringComparison.Ordinal));
            if (frames.Contains("task leaf")) Assert.Equal(["task left", Frame("left", "await asyncio.create_task("), "task leaf"], frames[Array.IndexOf(frames, "task left")..(Array.IndexOf(frames, "task leaf") + 1)]);
            if (frames.Contains("task shared (2 parents)")) Assert.Equal(["task waiter-a", Frame("waiter", "await shared"), "task shared (2 parents)"], frames[Array.IndexOf(frames, "task waiter-a")..(Array.IndexOf(frames, "task shared (2 parents)") + 1)]);
        }
    }

    /// <summary>
    /// With <c>--native</c> the task's own frames still start at its coroutine: the C frames of the loop that ran the step
    /// (from <c>main</c> and <c>Py_RunMain</c> to the task's step function) go with the loop's Python frames, and the
    /// C frames under burn stay.
    /// </summary>
    [Fact]
    public void WithNativeFramesATaskStillStartsAtItsCoroutine()
    {
        var stacks = Record(["--native", "--", CachedPythons.Executable("debian:3.14"), TreeWorkload], out var result);
        var inTasks = stacks.Where(s => TaskRoots(s.Frames).Length > 0).ToList();
        var total = inTasks.Sum(s => s.Count);
        var atCoroutine = inTasks.Where(s => OwnFrames(s.Frames) is [var first, ..] && first.StartsWith("spin (", StringComparison.Ordinal)).ToList();
        Assert.True(total >= 200 && atCoroutine.Sum(s => s.Count) >= total * 19 / 20, $"{atCoroutine.Sum(s => s.Count)} of {total} task samples start at the task's coroutine\n{result}");
        Assert.DoesNotContain(atCoroutine, s => s.Frames.Any(f => f.StartsWith("Py_RunMain (", StringComparison.Ordinal) || f.StartsWith("Handle._run (", StringComparison.Ordinal)));
        Assert.Contains(atCoroutine, s => s.Frames[^1].EndsWith("(python3.14)", StringComparison.Ordinal) || s.Frames[^1].EndsWith("(libc.so.6)", StringComparison.Ordinal) || s.Frames[^1].EndsWith("([vdso])", StringComparison.Ordinal));
    }

    /// <summary>
    /// With --idle (wall clock) every task suspended in an await is counted there for the time it waits, read from user
    /// space at each census: Workloads/task_waits.py's blocked (an event that never comes) and sleeper (10 ms sleeps) wait
    /// the whole recording, each under main's chain at its own await, while worker's time is its CPU samples in burn.
    /// </summary>
    [Theory]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.13")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void WithIdleEachWaitingTaskIsCountedWhereItAwaits(string interpreter)
    {
        var stacks = Record(["--idle", "--", CachedPythons.Executable(interpreter), WaitsWorkload], out var result);
        string Frame(string function, string code) => $"{function} ({WaitsWorkload}:{LineOf(WaitsWorkload, code)})";
        string[] main = ["task main", Frame("main", "async with asyncio.TaskGroup()")];
        // main waits in its TaskGroup's exit: TaskGroup.__aexit__, and its _aexit where the version has one (3.14+, Debian's 3.13).
        static int TaskAt(string[] frames) => Array.FindIndex(frames, 1, f => f.StartsWith("task ", StringComparison.Ordinal));
        bool Under(string[] frames, string task) => frames.Length > 2 && frames[..2].SequenceEqual(main) && TaskAt(frames) is var k and > 2 && frames[k] == task;
        var blocked = stacks.Where(s => Under(s.Frames, "task blocked")).OrderByDescending(s => s.Count).ToList();
        var sleeper = stacks.Where(s => Under(s.Frames, "task sleeper")).OrderByDescending(s => s.Count).ToList();
        var listed = string.Join("\n", stacks.OrderByDescending(s => s.Count).Take(12).Select(s => $"{s.Count} {string.Join(";", s.Frames)}"));
        Assert.True(blocked.Count > 0 && sleeper.Count > 0, listed);
        // Where each awaits, under main's TaskGroup exit (sleeper now and then elsewhere in sleep(): a census reads the
        // process as it runs).
        static string Function(string frame) => frame[..frame.IndexOf(' ')];
        static string FileOf(string frame) => frame[(frame.IndexOf('(') + 1)..frame.LastIndexOf(':')];
        var at = TaskAt(blocked[0].Frames);
        Assert.Equal(at == 4 ? ["TaskGroup.__aexit__", "TaskGroup._aexit"] : ["TaskGroup.__aexit__"], blocked[0].Frames[2..at].Select(Function));
        Assert.Equal(at + 3, blocked[0].Frames.Length);
        Assert.Equal(Frame("blocked", "await event.wait()"), blocked[0].Frames[at + 1]);
        Assert.Equal("Event.wait", Function(blocked[0].Frames[at + 2]));
        Assert.EndsWith("asyncio/locks.py", FileOf(blocked[0].Frames[at + 2]));
        Assert.Equal(at, TaskAt(sleeper[0].Frames));
        Assert.Equal(at + 3, sleeper[0].Frames.Length);
        Assert.Equal(Frame("sleeper", "await asyncio.sleep(0.01)"), sleeper[0].Frames[at + 1]);
        Assert.Equal("sleep", Function(sleeper[0].Frames[at + 2]));
        Assert.EndsWith("asyncio/tasks.py", FileOf(sleeper[0].Frames[at + 2]));
        Assert.True(sleeper[0].Count * 10 >= sleeper.Sum(s => s.Count) * 9, listed);
        // Each waits the whole recording but the command's start-up (the interpreter's, asyncio's import): of 3 s at
        // 199 Hz, more on a loaded machine (the -p test below holds the count to the recording's length).
        Assert.InRange(blocked.Sum(s => s.Count), 3 * 199 * 70 / 100, 3 * 199 * 102 / 100);
        Assert.InRange(sleeper.Sum(s => s.Count), 3 * 199 * 70 / 100, 3 * 199 * 102 / 100);
        // worker's time is the kernel's CPU samples, in burn.
        var burning = stacks.Where(s => Under(s.Frames, "task worker") && s.Frames[^1].StartsWith("burn (", StringComparison.Ordinal)).Sum(s => s.Count);
        Assert.True(burning >= 3 * 199 * 70 / 100, $"{burning} samples of worker in burn\n{listed}");
        var waits = long.Parse(System.Text.RegularExpressions.Regex.Match(result.Stderr, @"; (\d+) of them asyncio tasks suspended in an await, from \d+ censuses").Groups[1].Value, CultureInfo.InvariantCulture);
        // The censuses' samples: blocked's and (but for a few CPU samples of its own) sleeper's, and worker's few in its await.
        Assert.InRange(waits, blocked.Sum(s => s.Count) + sleeper.Sum(s => s.Count) * 95 / 100, stacks.Sum(s => s.Count) - burning);
    }

    /// <summary>
    /// The waiting tasks' stacks are those CPython 3.15's own sampler draws for every task
    /// (<c>--async-aware --async-mode all</c>) on the same process, frame for frame; blocked, waiting all the time, is
    /// counted for the whole recording (a census at its end counts the time since the one before).
    /// </summary>
    [Fact]
    public void TheWaitingTasksAreThoseOfCPythonsOwnSamplerForEveryTask()
    {
        var (ours, theirs, result) = BothSamplers(WaitsWorkload, ["--idle"], "all");
        foreach (var task in new[] { "<task>:blocked", "<task>:sleeper" })
        {
            static string Top(Dictionary<string, long> stacks, string task) => stacks.Where(s => s.Key.Contains(";" + task + ";", StringComparison.Ordinal)).MaxBy(s => s.Value).Key;
            Assert.True(Top(ours, task) == Top(theirs, task), $"{task}\npyprobe:\n{Listed(ours)}\nthe 3.15 sampler:\n{Listed(theirs)}");
            Assert.StartsWith("<task>:main;task_waits.py:main:", Top(ours, task));
        }
        var seconds = double.Parse(System.Text.RegularExpressions.Regex.Match(result.Stderr, @"Detached after ([0-9.]+) s").Groups[1].Value, CultureInfo.InvariantCulture);
        var blocked = ours.Where(s => s.Key.Contains(";<task>:blocked;", StringComparison.Ordinal)).Sum(s => s.Value);
        // From the process's discovery (before the attach, 0.1 s at most) to the detach.
        Assert.InRange(blocked, (long)(seconds * 199 * 0.97), (long)((seconds + 0.1) * 199) + 1);
    }

    /// <summary>
    /// The stacks of CPython 3.15's own sampler (<c>python -m profiling.sampling attach --async-aware --async-mode running</c>,
    /// which walks each running task's awaiters as it samples) are pyprobe's on the same process, frame for frame: each
    /// that holds more than 5% of either profile's task samples is in the other's too. They are the chains main;left;leaf,
    /// main;right and main;waiter-a;shared (2 parents), each awaiter with the frames it awaits in, and each task's own
    /// frames from its coroutine in: spin, then burn.
    /// </summary>
    [Fact]
    public void TheStacksAreThoseOfCPythonsOwnSampler()
    {
        var (ours, theirs, _) = BothSamplers(TreeWorkload, [], "running");
        static HashSet<string> Main(Dictionary<string, long> stacks) =>
            stacks.Where(c => c.Value * 20 > stacks.Values.Sum()).Select(c => c.Key).ToHashSet();
        Assert.True(Main(ours).SetEquals(Main(theirs)), $"pyprobe:\n{Listed(ours)}\nthe 3.15 sampler:\n{Listed(theirs)}");
        string[] chains = ["<task>:main;<task>:left;<task>:leaf", "<task>:main;<task>:right", "<task>:main;<task>:waiter-a;<task>:shared (2 parents)"];
        Assert.True(Main(ours).Select(c => string.Join(";", c.Split(';').Where(f => f.StartsWith("<task>:", StringComparison.Ordinal)))).ToHashSet().SetEquals(chains), Listed(ours));
        string own = $";<task>:{{0}};task_tree.py:spin:{LineOf(TreeWorkload, "        burn(seconds)")};task_tree.py:burn:{LineOf(TreeWorkload, "while time.perf_counter() < end:")}";
        Assert.All(Main(ours), stack => Assert.EndsWith(string.Format(CultureInfo.InvariantCulture, own, stack.Split(";<task>:")[^1].Split(';')[0]), stack));
    }

    /// <summary>
    /// <paramref name="workload"/> run by Debian 3.15 and, past its start-up, recorded 3 s by pyprobe (record --tasks
    /// <paramref name="options"/> -p) then 2 s by CPython's own sampler (<c>--async-aware --async-mode MODE</c>): each one's
    /// task stacks in the sampler's form, and pyprobe's run.
    /// </summary>
    private static (Dictionary<string, long> Ours, Dictionary<string, long> Theirs, CliResult Result) BothSamplers(string workload, string[] options, string mode)
    {
        var start = new ProcessStartInfo(CachedPythons.Executable("debian:3.15")) { UseShellExecute = false, RedirectStandardOutput = true };
        start.ArgumentList.Add(workload);
        using var python = Process.Start(start)!;
        var theirsPath = Path.Combine(Path.GetTempPath(), $"pyprobe-sampler-tasks-{Guid.NewGuid():N}.folded");
        try
        {
            // Past start-up, which takes over a second on a loaded machine: a task that does not exist yet is not
            // counted, and the counts below are for the whole recording.
            var ready = python.StandardOutput.ReadLineAsync();
            Assert.True(ready.Wait(TimeSpan.FromSeconds(30)) && ready.Result == "ready", "the workload did not start its tasks");
            var ours = Record([.. options, "-p", python.Id.ToString(CultureInfo.InvariantCulture)], out var result)
                .Where(s => TaskRoots(s.Frames).Length > 0)
                .GroupBy(s => string.Join(";", s.Frames.Select(AsSamplerFrame))).ToDictionary(g => g.Key, g => g.Sum(s => s.Count));
            return (ours, SamplerStacks(python.Id, theirsPath, mode), result);
        }
        finally
        {
            python.Kill();
            File.Delete(theirsPath);
        }
    }

    private static string Listed(Dictionary<string, long> stacks) => string.Join("\n", stacks.OrderByDescending(c => c.Value).Select(c => $"{c.Value} {c.Key}"));

    /// <summary>A frame of pyprobe's collapsed stacks as the 3.15 sampler writes it: <c>FILE_NAME:FUNCTION:LINE</c>, <c>&lt;task&gt;:NAME</c>.</summary>
    private static string AsSamplerFrame(string frame)
    {
        if (frame.StartsWith("task ", StringComparison.Ordinal)) return "<task>:" + frame[5..];
        var open = frame.LastIndexOf(" (", StringComparison.Ordinal);
        var place = frame[(open + 2)..^1];
        var colon = place.LastIndexOf(':');
        return $"{Path.GetFileName(place[..colon])}:{frame[..open]}:{place[(colon + 1)..]}";
    }

    /// <summary>The 3.15 sampler's task stacks (<c>--async-mode MODE</c>) for 2 s of <paramref name="pid"/> (its file written to <paramref name="path"/>), without its thread roots.</summary>
    private static Dictionary<string, long> SamplerStacks(int pid, string path, string mode)
    {
        var sampler = new ProcessStartInfo(CachedPythons.Executable("debian:3.15")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-m", "profiling.sampling", "attach", "--async-aware", "--async-mode", mode, "-d", "2", "--collapsed", "-o", path, pid.ToString(CultureInfo.InvariantCulture) })
            sampler.ArgumentList.Add(a);
        using (var run = Process.Start(sampler)!)
        {
            var errors = run.StandardError.ReadToEndAsync();
            run.StandardOutput.ReadToEnd();
            Assert.True(run.WaitForExit(60_000), "the 3.15 sampler did not end");
            Assert.True(run.ExitCode == 0, errors.Result);
        }
        // Its lines: tid:N;<task>:NAME:0;FILE_NAME:FUNCTION:LINE;...;<task>:NAME:0;... COUNT
        return File.ReadAllLines(path)
            .Select(l => (Frames: l[..l.LastIndexOf(' ')].Split(';').Where(f => !f.StartsWith("tid:", StringComparison.Ordinal))
                    .Select(f => f.StartsWith("<task>:", StringComparison.Ordinal) ? f[..f.LastIndexOf(':')] : f).ToList(),
                Count: long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
            .Where(c => c.Frames.Any(f => f.StartsWith("<task>:", StringComparison.Ordinal)))
            .GroupBy(c => string.Join(";", c.Frames)).ToDictionary(g => g.Key, g => g.Sum(c => c.Count));
    }

    /// <summary>The frames after a stack's last task root: the running task's own.</summary>
    private static string[] OwnFrames(string[] frames) => frames[(Array.LastIndexOf(frames, TaskRoots(frames)[^1]) + 1)..];

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
}
