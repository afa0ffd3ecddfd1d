using Pyprobe.Faults.Tests.Support;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// Processes that fork and processes with many threads. `-p PID` means that process: a forked child
/// (a new process, though it inherits the breakpoints and the raised semaphores) is not reported,
/// with either attach path; `--all BINARY` reports both, each with its own pid. With 100 threads
/// every event carries the right tid and the per-thread counts are exact.
/// </summary>
public class ForkAndThreadTests
{
    private const string ForkSetup = "import os\ndef parent_fn():\n    pass\ndef child_fn():\n    pass\n";
    private const string ForkMeasured =
        "for _ in range(5):\n    parent_fn()\n" +
        "child = os.fork()\n" +
        "if child == 0:\n    for _ in range(7):\n        child_fn()\n    os._exit(0)\n" +
        "os.waitpid(child, 0)\n" +
        "for _ in range(5):\n    parent_fn()\n" +
        "print(child, flush=True)\n";

    /// <summary>3.9: USDT probes; 3.13: _PyEval_EvalFrameDefault with the hook written (the child inherits it).</summary>
    [Theory]
    [InlineData("3.9", null)]
    [InlineData("3.9", "1")]
    [InlineData("3.13", null)]
    [InlineData("3.13", "1")]
    public void ProcessTraceOfAForkingTargetReportsTheParentOnly(string version, string? forcePerfEvent)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        using var workload = new PythonWorkload(python.Command(), ForkSetup, ForkMeasured);
        using var json = new TempFile();
        using var trace = TraceProcess.Start(["trace", "--format", "json", "-o", json.Path, "-p", workload.Pid.ToString()],
            new Dictionary<string, string?> { ["PYPROBE_FORCE_PERF_EVENT"] = forcePerfEvent });
        workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
        var child = int.Parse(Assert.Single(workload.Output));
        trace.Signal(Posix.SigInt);
        var result = trace.Finish(TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());

        var output = new TraceOutput(File.ReadAllText(json.Path));
        Assert.Equal(10, output.Count("function__entry", "funcname", "parent_fn"));
        Assert.Equal(0, output.Count("function__entry", "funcname", "child_fn"));
        Assert.All(output.Events, e => Assert.Equal(workload.Pid, e.GetProperty("pid").GetInt32()));
        Assert.DoesNotContain(output.Events, e => e.GetProperty("pid").GetInt32() == child);
    }

    [Fact]
    public void AllModeReportsParentAndForkedChildWithTheirOwnPids()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Command(), ForkSetup, ForkMeasured);
        using var json = new TempFile();
        using var trace = TraceProcess.Start(["trace", "--format", "json", "-o", json.Path, "--all", python.BinaryPath]);
        workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
        var child = int.Parse(Assert.Single(workload.Output));
        Thread.Sleep(200);
        trace.Signal(Posix.SigInt);
        var result = trace.Finish(TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());

        var output = new TraceOutput(File.ReadAllText(json.Path));
        int Count(string function, int pid) => output.OfProbe("function__entry").Count(e =>
            e.GetProperty("funcname").GetString() == function && e.GetProperty("pid").GetInt32() == pid && e.GetProperty("tid").GetInt32() == pid);
        Assert.Equal(10, Count("parent_fn", workload.Pid));
        Assert.Equal(7, Count("child_fn", child));
        Assert.Equal(0, Count("child_fn", workload.Pid));
        Assert.Equal(0, Count("parent_fn", child));
    }

    [Fact]
    public void HundredThreadsGiveExactPerThreadCounts()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        const string setup =
            "import threading\ndef work():\n    pass\nbarrier = threading.Barrier(100)\nresults = []\n" +
            "def run(i):\n    barrier.wait()\n    for _ in range(10 + i):\n        work()\n    results.append((threading.get_native_id(), 10 + i))\n";
        const string measured =
            "threads = [threading.Thread(target=run, args=(i,)) for i in range(100)]\n" +
            "for t in threads:\n    t.start()\nfor t in threads:\n    t.join()\n" +
            "for tid, n in results:\n    print(tid, n)\nsys.stdout.flush()\n";
        using var workload = new PythonWorkload(python.Command(), setup, measured);
        using var json = new TempFile();
        using var text = new TempFile();
        using var trace = TraceProcess.Start(["trace", "--format", "json", "-o", json.Path, "-p", workload.Pid.ToString()]);
        using var textTrace = TraceProcess.Start(["trace", "--time", "none", "--function", "work", "-o", text.Path, "-p", workload.Pid.ToString()]);
        workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
        foreach (var t in new[] { trace, textTrace })
        {
            t.Signal(Posix.SigInt);
            var result = t.Finish(TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains(", 0 lost", result.Stderr);
        }

        var expected = workload.Output.Select(l => l.Split(' ')).ToDictionary(f => int.Parse(f[0]), f => int.Parse(f[1]));
        Assert.Equal(100, expected.Count);
        Assert.DoesNotContain(workload.Pid, expected.Keys);
        var output = new TraceOutput(File.ReadAllText(json.Path));
        var actual = output.OfProbe("function__entry").Where(e => e.GetProperty("funcname").GetString() == "work")
            .GroupBy(e => e.GetProperty("tid").GetInt32()).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));
        Assert.All(output.Events, e => Assert.Equal(workload.Pid, e.GetProperty("pid").GetInt32()));

        // Text lines of a non-main thread carry its tid: "[TID] function__entry filename=<string>, funcname=work, lineno=3".
        var lines = File.ReadAllLines(text.Path);
        var byTid = lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"^\[(\d+)\] function__entry filename=<string>, funcname=work, lineno=3$"))
            .Where(m => m.Success).GroupBy(m => int.Parse(m.Groups[1].Value)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(lines.Length, byTid.Values.Sum());
        Assert.Equal(expected.OrderBy(p => p.Key), byTid.OrderBy(p => p.Key));
    }
}
