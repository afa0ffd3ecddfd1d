using System.Diagnostics;
using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// dump --tasks: every pending asyncio task of a process, read from memory on 3.8–3.15. The workload
/// (Workloads/async_tasks.py) puts its tasks in known awaits: Task-1 in a gather of worker-a and worker-b, worker-a
/// four coroutines deep in Event.wait, worker-b awaiting the task helper, helper in asyncio.sleep, from 3.11 a TaskGroup
/// (group-parent, its child group-child), and spinner running, holding the loop. On 3.14 and 3.15 CPython's own
/// <c>python -m asyncio ps</c> reads the same process, and both must agree task by task.
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
            var json = PyprobeBinary.Run(["dump", "--tasks", "-f", "json", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(json.ExitCode == 0, json.ToString());
            using var document = JsonDocument.Parse(json.Stdout);
            var tasks = document.RootElement.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
            var grouped = !interpreter.Contains("3.8") && !interpreter.Contains("3.9") && !interpreter.Contains("3.10");
            string[] names = grouped
                ? ["Task-1", "worker-a", "worker-b", "helper", "group-parent", "group-child", "spinner"]
                : ["Task-1", "worker-a", "worker-b", "helper", "spinner"];
            Assert.Equal(names.Order(), tasks.Keys.Order());
            string Id(string name) => tasks[name].GetProperty("id").GetString()!;

            Assert.Equal(["main:55"], Frames(tasks["Task-1"], ownOnly: true));
            Assert.Equal([Id("worker-a"), Id("worker-b")], WaitsFor(tasks["Task-1"]));

            Assert.Equal(["wait", "leaf", "fetch", "worker"], FunctionNames(tasks["worker-a"]));
            Assert.Equal(["leaf:8", "fetch:12", "worker:16"], Frames(tasks["worker-a"], ownOnly: true));
            Assert.EndsWith("asyncio/locks.py", tasks["worker-a"].GetProperty("frames")[0].GetProperty("filename").GetString());
            Assert.Empty(WaitsFor(tasks["worker-a"]));
            Assert.Equal("Future", tasks["worker-a"].GetProperty("waits_on").GetString());

            Assert.Equal(["follow:24"], Frames(tasks["worker-b"], ownOnly: true));
            Assert.Equal([Id("helper")], WaitsFor(tasks["worker-b"]));

            Assert.Equal(["sleep", "nap"], FunctionNames(tasks["helper"]));
            Assert.Equal(["nap:20"], Frames(tasks["helper"], ownOnly: true));
            Assert.Equal("Future", tasks["helper"].GetProperty("waits_on").GetString());

            Assert.Equal("running", tasks["spinner"].GetProperty("state").GetString());
            Assert.Equal(["spinner:39"], Frames(tasks["spinner"], ownOnly: true));
            foreach (var name in names.Where(n => n != "spinner"))
                Assert.Equal("waiting", tasks[name].GetProperty("state").GetString());

            if (grouped)
            {
                Assert.Equal(["wait"], FunctionNames(tasks["group-child"]));
                Assert.Equal(["grouped:28"], Frames(tasks["group-parent"], ownOnly: true));
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
            Assert.Equal(["Task Task-1 (waiting for worker-a, worker-b)", $"    main ({Workload}:55)", "",
                "Task worker-a (waiting on a Future)"], lines[(header + 2)..(header + 6)]);
            Assert.Equal([$"    leaf ({Workload}:8)", $"    fetch ({Workload}:12)", $"    worker ({Workload}:16)", "",
                "Task worker-b (waiting for helper)", $"    follow ({Workload}:24)", "", "Task helper (waiting on a Future)"], lines[(header + 7)..(header + 15)]);
            Assert.Contains("Task spinner (running: its stack is its thread's)", lines);
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
            var json = PyprobeBinary.Run(["dump", "--tasks", "-f", "json", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(json.ExitCode == 0, json.ToString());
            using var document = JsonDocument.Parse(json.Stdout);
            var ours = document.RootElement.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("id").GetString()!);

            var theirs = AsyncioPs(interpreter, pid);
            Assert.Equal(ours.Keys.Order(), theirs.Select(r => r.Id).Distinct().Order());
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
