using System.Diagnostics;
using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// dump --tasks: every pending asyncio task of a process, read from memory on 3.8–3.15. The workload
/// (Workloads/async_tasks.py) puts its tasks in known awaits: Task-1 in a gather of worker-a and worker-b, worker-a
/// four coroutines deep in Event.wait, worker-b awaiting the task helper, helper in asyncio.sleep, from 3.11 a TaskGroup
/// (group-parent, its child group-child), consumer in an async for over an async generator awaiting inside, yielder in
/// asyncio.sleep(0)'s bare yield, spinner running, holding the loop, and elsewhere on a second thread's loop. On
/// 3.14 and 3.15 CPython's own <c>python -m asyncio ps</c> reads the same process, and both must agree task by task.
/// </summary>
public class DumpTasksTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "async_tasks.py");

    [Theory]
    [InlineData("pyenv:3.8.18")]
    [InlineData("pyenv:3.9.18")]
    [InlineData("pyenv:3.10.13")]
    [InlineData("pyenv:3.11.7")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("pyenv:3.13.0")]
    [InlineData("debian:3.9")]
    [InlineData("debian:3.11")]
    [InlineData("debian:3.13")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EachTaskShowsItsAwaitsAndWhatItWaitsFor(string interpreter)
    {
        using var python = StartWorkload(interpreter);
        try
        {
            var pid = python.Id.ToString();
            using var document = DumpJson(pid);
            var tasks = document.RootElement.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
            var grouped = !interpreter.Contains("3.8") && !interpreter.Contains("3.9") && !interpreter.Contains("3.10");
            string[] names = grouped
                ? ["Task-1", "worker-a", "worker-b", "helper", "consumer", "group-parent", "group-child", "yielder", "spinner", "elsewhere"]
                : ["Task-1", "worker-a", "worker-b", "helper", "consumer", "yielder", "legacy", "spinner", "elsewhere"];
            Assert.Equal(names.Order(), tasks.Keys.Order());
            string Id(string name) => tasks[name].GetProperty("id").GetString()!;
            // Each task's loop runs on the main thread but one, which runs on a thread of its own.
            var threads = document.RootElement.GetProperty("threads").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => t.GetProperty("tid").GetInt32());
            var (mainThread, loopThread) = (threads["MainThread"], threads["loop-thread"]);
            var On = $"thread {mainThread}, ";
            foreach (var name in names)
                Assert.Equal(name == "elsewhere" ? loopThread : mainThread, tasks[name].GetProperty("tid").GetInt32());
            Assert.Equal([$"nap:{LineOf("await asyncio.sleep(3600)")}"], Frames(tasks["helper"], ownOnly: true));
            Assert.Equal([$"elsewhere:{LineOf("await asyncio.sleep(3600)", after: "async def elsewhere")}"], Frames(tasks["elsewhere"], ownOnly: true));

            Assert.Equal([$"main:{LineOf("await asyncio.gather(a, b)")}"], Frames(tasks["Task-1"], ownOnly: true));
            Assert.Equal([Id("worker-a"), Id("worker-b")], WaitsFor(tasks["Task-1"]));

            Assert.Equal(["wait", "leaf", "fetch", "worker"], FunctionNames(tasks["worker-a"]));
            Assert.Equal([$"leaf:{LineOf("await event.wait()")}", $"fetch:{LineOf("await leaf(event)")}", $"worker:{LineOf("await fetch(event, ")}"], Frames(tasks["worker-a"], ownOnly: true));
            Assert.EndsWith("asyncio/locks.py", tasks["worker-a"].GetProperty("frames")[0].GetProperty("filename").GetString());
            Assert.Empty(WaitsFor(tasks["worker-a"]));
            Assert.Equal("Future", tasks["worker-a"].GetProperty("waits_on").GetString());

            Assert.Equal([$"follow:{LineOf("await task")}"], Frames(tasks["worker-b"], ownOnly: true));
            Assert.Equal([Id("helper")], WaitsFor(tasks["worker-b"]));

            Assert.Equal(["sleep", "nap"], FunctionNames(tasks["helper"]));
            Assert.Equal([$"nap:{LineOf("await asyncio.sleep(3600)")}"], Frames(tasks["helper"], ownOnly: true));
            Assert.Equal("Future", tasks["helper"].GetProperty("waits_on").GetString());

            // async for: through the async generator's asend object into the generator's own await.
            Assert.Equal(["wait", "ticks", "consume"], FunctionNames(tasks["consumer"]));
            Assert.Equal([$"ticks:{LineOf("await event.wait()", after: "async def ticks")}", $"consume:{LineOf("async for _ in ticks(event)")}"], Frames(tasks["consumer"], ownOnly: true));

            // asyncio.sleep(0) suspends in a bare yield of the generator __sleep0, where its task's chain ends, as CPython's
            // asyncio ps ends it: at a generator a coroutine awaits (followed, the word under its stack's top is no object,
            // and the task was left out). Before 3.11 a generator-based coroutine is a task's own: at its bare yield
            // (no YIELD_FROM next) it awaits nothing.
            Assert.Equal(["sleep", "yielder"], FunctionNames(tasks["yielder"]));
            if (!grouped)
            {
                Assert.Equal([$"legacy:{LineOf("yield  # a generator-based coroutine's bare yield")}"], Frames(tasks["legacy"], ownOnly: true));
                Assert.Empty(WaitsFor(tasks["legacy"]));
                // What lies under its stack's top is read as what it waits on otherwise (a stale str, on 3.9).
                Assert.False(tasks["legacy"].TryGetProperty("waits_on", out var legacyWaitsOn) && legacyWaitsOn.ValueKind != JsonValueKind.Null, tasks["legacy"].ToString());
            }
            Assert.Equal([$"yielder:{LineOf("await asyncio.sleep(0)  # a bare yield")}"], Frames(tasks["yielder"], ownOnly: true));
            Assert.Empty(WaitsFor(tasks["yielder"]));
            Assert.False(tasks["yielder"].TryGetProperty("waits_on", out var waitsOn) && waitsOn.ValueKind != JsonValueKind.Null, tasks["yielder"].ToString());

            Assert.Equal("running", tasks["spinner"].GetProperty("state").GetString());
            Assert.Equal([$"spinner:{LineOf("spin()", after: "async def spinner")}"], Frames(tasks["spinner"], ownOnly: true));
            foreach (var name in names.Where(n => n != "spinner"))
                Assert.Equal("waiting", tasks[name].GetProperty("state").GetString());

            if (grouped)
            {
                Assert.Equal(["wait"], FunctionNames(tasks["group-child"]));
                Assert.Equal([$"grouped:{LineOf("async with asyncio.TaskGroup()")}"], Frames(tasks["group-parent"], ownOnly: true));
                // From 3.14 the child says its parent awaits it; before, the parent's TaskGroup.__aexit__ holds the group.
                Assert.Equal([Id("group-child")], WaitsFor(tasks["group-parent"]));
                Assert.Equal("Future", tasks["group-child"].GetProperty("waits_on").GetString());
            }

            var text = PyprobeBinary.Run(["dump", "--tasks", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(text.ExitCode == 0, text.ToString());
            var lines = text.Stdout.Split('\n');
            var header = Array.IndexOf(lines, $"{names.Length} asyncio tasks");
            Assert.True(header > 0, text.Stdout);
            // A tree's order: Task-1, then what it waits for, depth first.
            Assert.Equal([$"Task Task-1 ({On}waiting for worker-a, worker-b)", $"    main ({Workload}:{LineOf("await asyncio.gather(a, b)")})", "",
                $"Task worker-a ({On}waiting on a Future)"], lines[(header + 2)..(header + 6)]);
            Assert.Equal([$"    leaf ({Workload}:{LineOf("await event.wait()")})", $"    fetch ({Workload}:{LineOf("await leaf(event)")})", $"    worker ({Workload}:{LineOf("await fetch(event, ")})", "",
                $"Task worker-b ({On}waiting for helper)", $"    follow ({Workload}:{LineOf("await task")})", "", $"Task helper ({On}waiting on a Future)"], lines[(header + 7)..(header + 15)]);
            Assert.Contains($"Task spinner ({On}running: its stack is its thread's)", lines);
            Assert.Contains($"Task yielder ({On}waiting)", lines);
            Assert.Contains($"Task elsewhere (thread {loopThread}, waiting on a Future)", lines);
        }
        finally
        {
            python.Kill();
        }
    }

    [Theory]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void TasksAgreeWithPythonsOwnAsyncioPs(string interpreter)
    {
        using var python = StartWorkload(interpreter);
        try
        {
            var pid = python.Id.ToString();
            using var document = DumpJson(pid);
            var ours = document.RootElement.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("id").GetString()!);

            var theirs = AsyncioPs(interpreter, pid);
            // 3.14.10's asyncio ps leaves out the task of the second thread's loop, which 3.15 lists (and pyprobe on both).
            var missed = ours.Keys.Except(theirs.Select(r => r.Id)).Select(id => ours[id].GetProperty("name").GetString()).ToArray();
            Assert.Equal(interpreter.Contains("3.14") ? ["elsewhere"] : [], missed);
            Assert.Subset(ours.Keys.ToHashSet(), theirs.Select(r => r.Id).ToHashSet());
            foreach (var row in theirs)
            {
                var task = ours[row.Id];
                Assert.Equal(row.Name, task.GetProperty("name").GetString());
                Assert.Equal(row.Stack, string.Join(" -> ", FunctionNames(task, qualified: true)));
                if (row.AwaiterId != "0x0") Assert.Contains(row.Id, WaitsFor(ours[row.AwaiterId]));
            }
            // Each task we say waits for another is a row of asyncio ps with that awaiter.
            foreach (var (id, task) in ours)
                foreach (var child in WaitsFor(task))
                    Assert.Contains(theirs, r => r.Id == child && r.AwaiterId == id);
        }
        finally
        {
            python.Kill();
        }
    }

    [Fact]
    public void AProcessWithoutAsyncioHasNoTask()
    {
        var start = new ProcessStartInfo(CachedPythons.Executable("pyenv:3.12.1")) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import time\nprint('ready', flush=True)\ntime.sleep(3600)\n");
        using var python = Process.Start(start)!;
        try
        {
            Assert.Equal("ready", FirstLine(python, TimeSpan.FromSeconds(30)));
            var text = PyprobeBinary.Run(["dump", "--tasks", "-p", python.Id.ToString()], timeout: TimeSpan.FromSeconds(30));
            Assert.True(text.ExitCode == 0, text.ToString());
            Assert.EndsWith("\nNo asyncio task\n", text.Stdout);
            var json = PyprobeBinary.Run(["dump", "--tasks", "-f", "json", "-p", python.Id.ToString()], timeout: TimeSpan.FromSeconds(30));
            using var document = JsonDocument.Parse(json.Stdout);
            Assert.Equal(0, document.RootElement.GetProperty("tasks").GetArrayLength());
            var plain = PyprobeBinary.Run(["dump", "-f", "json", "-p", python.Id.ToString()], timeout: TimeSpan.FromSeconds(30));
            using var withoutTasks = JsonDocument.Parse(plain.Stdout);
            Assert.False(withoutTasks.RootElement.TryGetProperty("tasks", out _));
        }
        finally
        {
            python.Kill();
        }
    }

    [Theory]
    [InlineData("pyenv:3.8.18")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void WithLocalsEachCoroutineFrameShowsItsVariables(string interpreter)
    {
        using var python = StartWorkload(interpreter);
        try
        {
            var pid = python.Id.ToString();
            using var document = DumpJson(pid, "--locals");
            var worker = document.RootElement.GetProperty("tasks").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "worker-a");
            var fetch = worker.GetProperty("frames").EnumerateArray().Single(f => f.GetProperty("funcname").GetString() == "fetch");
            var locals = fetch.GetProperty("locals").EnumerateArray()
                .Select(l => $"{l.GetProperty("name").GetString()}={l.GetProperty("value").GetString()}{(l.GetProperty("arg").GetBoolean() ? " (arg)" : "")}").ToArray();
            Assert.Equal(3, locals.Length);
            Assert.Matches(@"^event=<Event object at 0x[0-9a-f]+> \(arg\)$", locals[0]);
            Assert.Equal(["url='https://example.org/a' (arg)", "attempt=3"], locals[1..]);

            var text = PyprobeBinary.Run(["dump", "--tasks", "--locals", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            var lines = text.Stdout.Split('\n');
            var at = Array.IndexOf(lines, $"    fetch ({Workload}:{LineOf("await leaf(event)")})");
            Assert.True(at > 0, text.Stdout);
            Assert.Equal(["        Arguments:", "            url = 'https://example.org/a'", "        Locals:", "            attempt = 3"],
                new[] { lines[at + 1], lines[at + 3], lines[at + 4], lines[at + 5] });
        }
        finally
        {
            python.Kill();
        }
    }

    /// <summary>`pyprobe dump --tasks -f json` of the process, with <paramref name="more"/> options.</summary>
    private static JsonDocument DumpJson(string pid, params string[] more)
    {
        var json = PyprobeBinary.Run(["dump", "--tasks", .. more, "-f", "json", "-p", pid], timeout: TimeSpan.FromSeconds(30));
        Assert.True(json.ExitCode == 0, json.ToString());
        return JsonDocument.Parse(json.Stdout);
    }

    /// <summary>The workload's line holding <paramref name="text"/> (the first after the line holding <paramref name="after"/>).</summary>
    private static int LineOf(string text, string? after = null)
    {
        var lines = File.ReadAllLines(Workload);
        var from = after is null ? 0 : Array.FindIndex(lines, l => l.Contains(after, StringComparison.Ordinal));
        return Array.FindIndex(lines, from, l => l.Contains(text, StringComparison.Ordinal)) + 1;
    }

    private sealed record PsRow(string Id, string Name, string Stack, string AwaiterId);

    /// <summary>The rows of <c>python -m asyncio ps PID</c>, cut at its header's columns (the stacks hold spaces).</summary>
    private static List<PsRow> AsyncioPs(string interpreter, string pid)
    {
        var start = new ProcessStartInfo(CachedPythons.Executable(interpreter)) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-m", "asyncio", "ps", pid }) start.ArgumentList.Add(a);
        using var ps = Process.Start(start)!;
        var output = ps.StandardOutput.ReadToEndAsync();
        var errors = ps.StandardError.ReadToEndAsync();
        Assert.True(ps.WaitForExit(60_000), "python -m asyncio ps did not end");
        Assert.True(ps.ExitCode == 0, errors.Result);
        var lines = output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] titles = ["task id", "task name", "coroutine stack", "awaiter chain", "awaiter name", "awaiter id"];
        var at = titles.Select(t => lines[0].IndexOf(t, StringComparison.Ordinal)).ToArray();
        Assert.DoesNotContain(-1, at);
        string Cut(string line, int i) => line.Length <= at[i] ? "" : (i + 1 < at.Length && line.Length > at[i + 1] ? line[at[i]..at[i + 1]] : line[at[i]..]).Trim();
        return lines.Skip(2).Select(l => new PsRow(Cut(l, 0), Cut(l, 1), Cut(l, 2), Cut(l, 5))).ToList();
    }

    private static Process StartWorkload(string interpreter)
    {
        var start = new ProcessStartInfo(CachedPythons.Executable(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Workload);
        var python = Process.Start(start)!;
        try
        {
            Assert.Equal("ready", FirstLine(python, TimeSpan.FromSeconds(30)));
            return python;
        }
        catch
        {
            python.Kill();
            python.Dispose();
            throw;
        }
    }

    /// <summary>The task's frames as function names, innermost first: bare (3.8–3.10 have no qualified names) unless asked.</summary>
    private static string[] FunctionNames(JsonElement task, bool qualified = false) =>
        task.GetProperty("frames").EnumerateArray().Select(f => f.GetProperty("funcname").GetString()!)
            .Select(n => qualified ? n : n[(n.LastIndexOf('.') + 1)..]).ToArray();

    /// <summary>"function:line" of the task's frames, innermost first; with <paramref name="ownOnly"/> only the workload's own.</summary>
    private static string[] Frames(JsonElement task, bool ownOnly) =>
        task.GetProperty("frames").EnumerateArray()
            .Where(f => !ownOnly || f.GetProperty("filename").GetString() == Workload)
            .Select(f => $"{f.GetProperty("funcname").GetString()}:{f.GetProperty("lineno").GetInt32()}").ToArray();

    private static string[] WaitsFor(JsonElement task) => task.GetProperty("waits_for").EnumerateArray().Select(e => e.GetString()!).ToArray();

    private static string? FirstLine(Process process, TimeSpan timeout)
    {
        var line = process.StandardOutput.ReadLineAsync();
        return line.Wait(timeout) ? line.Result : null;
    }
}
