using System.Diagnostics;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// Function events from _PyEval_EvalFrameDefault where the USDT function probes do not fire (pyenv builds without
/// probes, 3.12–3.14, 3.11 without the gate): exact entries and returns through `pyprobe trace -p`, the target's
/// output unchanged, and the eval-frame hook read back from the process as it was after every way pyprobe ends.
/// </summary>
public class EvalFrameTraceTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "eval_frame_counts.py");

    public static TheoryData<string> Interpreters => new()
    {
        "pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0",
        "debian:3.13", "debian:3.14", // Debian's 3.11 has probes: with returns, USDT and the line gate are its source (see FunctionEventSource.For)
    };

    /// <summary>
    /// Debian's 3.11 has probes, but its entry probe needs the line gate, which slows every line: entries alone come
    /// through the hook (the same counts as the pyenv builds), returns too through USDT and the gate; the gate stays shut
    /// with the hook, and both are as they were after Ctrl-C.
    /// </summary>
    [Fact]
    public void DebianElevenTakesEntriesAloneThroughTheHook()
    {
        using (var target = StartWorkload("debian:3.11"))
        {
            var hookBefore = HookStates(target.Pid);
            using var json = new TempFile();
            using var trace = AttachedTracer.Start(["trace", "function__entry", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(), "--duration", "30"], out var attached);
            Assert.Contains("_PyEval_EvalFrameDefault with the eval-frame hook", attached);
            Assert.Equal([HookState.EvalFrameDefault], HookStates(target.Pid));
            target.Go();
            Assert.Equal("done 499500 1000 3", target.ReadLine());
            AttachedTracer.Interrupt(trace);
            AssertExactCounts(new TraceOutput(File.ReadAllText(json.Path)), "debian:3.11", ["function__entry"]);
            Assert.Equal(hookBefore, HookStates(target.Pid));
        }
        using (var target = StartWorkload("debian:3.11"))
        {
            using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "-o", "/dev/null", "-p", target.Pid.ToString(), "--duration", "30"], out var attached);
            Assert.Contains("function__return (USDT", attached);
            Assert.Equal([HookState.Unset], HookStates(target.Pid));
            AttachedTracer.Interrupt(trace);
        }
    }

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void TraceGivesExactEntriesAndReturnsAndLeavesTheHookAsItWas(string interpreter)
    {
        using var target = StartWorkload(interpreter);
        var hookBefore = HookStates(target.Pid);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(), "--duration", "30"], out var attached);
        Assert.Contains("_PyEval_EvalFrameDefault", attached);
        target.Go();
        Assert.Equal("done 499500 1000 3", target.ReadLine());
        AttachedTracer.Interrupt(trace);
        AssertExactCounts(new TraceOutput(File.ReadAllText(json.Path)), interpreter);
        Assert.Equal(hookBefore, HookStates(target.Pid));
    }

    /// <summary>Entries alone come from a program that pushes nothing (no return pops): the same counts, names and lines.</summary>
    [Theory]
    [MemberData(nameof(Interpreters))]
    public void EntriesAloneAreExactWithoutTheActivationStack(string interpreter)
    {
        var output = TraceOneProbe(interpreter, "function__entry");
        Assert.Empty(output.OfProbe("function__return"));
        AssertExactCounts(output, interpreter, ["function__entry"]);
    }

    /// <summary>Returns alone: the entry program only pushes (a generator's creation tagged), the ret program sends.</summary>
    [Theory]
    [MemberData(nameof(Interpreters))]
    public void ReturnsAloneAreExact(string interpreter)
    {
        var output = TraceOneProbe(interpreter, "function__return");
        Assert.Empty(output.OfProbe("function__entry"));
        AssertExactCounts(output, interpreter, ["function__return"]);
    }

    /// <summary>The workload traced with <paramref name="probe"/> alone, as JSON, stopped with Ctrl-C after it is done; nothing lost.</summary>
    private static TraceOutput TraceOneProbe(string interpreter, string probe)
    {
        using var target = StartWorkload(interpreter);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", probe, "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(), "--duration", "30"], out _);
        target.Go();
        Assert.Equal("done 499500 1000 3", target.ReadLine());
        AttachedTracer.Interrupt(trace);
        return new TraceOutput(File.ReadAllText(json.Path));
    }

    [Fact]
    public void SigtermAndDurationRestoreTheHook()
    {
        using var target = StartWorkload("pyenv:3.12.1");
        Assert.Equal([HookState.Unset], HookStates(target.Pid));
        using (var trace = AttachedTracer.Start(["trace", "function__entry", "-p", target.Pid.ToString(), "-o", "/dev/null"], out _))
        {
            Assert.Equal([HookState.EvalFrameDefault], HookStates(target.Pid));
            AttachedTracer.Signal(trace.Id, "TERM");
            var (exit, _, stderr) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(60));
            Assert.True(exit == 0, stderr);
        }
        Assert.Equal([HookState.Unset], HookStates(target.Pid));
        var timed = PyprobeBinary.Run(["trace", "function__entry", "-p", target.Pid.ToString(), "-o", "/dev/null", "--duration", "1"]);
        Assert.True(timed.ExitCode == 0, timed.ToString());
        Assert.Contains("writes 8 bytes into the process", timed.Stderr);
        Assert.Equal([HookState.Unset], HookStates(target.Pid));
    }

    [Fact]
    public void TwoPyprobesOnOneProcessLeaveTheHookUnset()
    {
        using var target = StartWorkload("pyenv:3.13.0");
        using var first = AttachedTracer.Start(["trace", "function__entry", "-p", target.Pid.ToString(), "-o", "/dev/null"], out _);
        using var second = AttachedTracer.Start(["trace", "function__entry", "-p", target.Pid.ToString(), "-o", "/dev/null"], out _);
        Assert.Equal([HookState.EvalFrameDefault], HookStates(target.Pid));
        AttachedTracer.Signal(first.Id, "INT");
        Assert.Equal(0, AttachedTracer.Finish(first, TimeSpan.FromSeconds(60)).Exit);
        AttachedTracer.Signal(second.Id, "INT");
        Assert.Equal(0, AttachedTracer.Finish(second, TimeSpan.FromSeconds(60)).Exit);
        Assert.Equal([HookState.Unset], HookStates(target.Pid));
    }

    [Fact]
    public void PerfTrampolineIsLeftAloneAndObserved()
    {
        using var target = StartWorkload("pyenv:3.12.1", "-X", "perf");
        Assert.Equal([HookState.Foreign], HookStates(target.Pid));
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString()], out _);
        target.Go();
        Assert.Equal("done 499500 1000 3", target.ReadLine());
        AttachedTracer.Signal(trace.Id, "INT");
        var (exit, _, stderr) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        AssertExactCounts(new TraceOutput(File.ReadAllText(json.Path)), "pyenv:3.12.1");
        Assert.Equal([HookState.Foreign], HookStates(target.Pid));
    }

    [Fact]
    public void NoWriteRefusesTheHookWithOneLine()
    {
        using var target = StartWorkload("pyenv:3.12.1");
        var result = PyprobeBinary.Run(["trace", "function__entry", "-p", target.Pid.ToString(), "--no-write", "--duration", "1"]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("--no-write forbids setting it", result.Stderr);
        Assert.Equal([HookState.Unset], HookStates(target.Pid));
    }

    /// <summary>
    /// The workload's activations, as 3.9's USDT probes and sys.setprofile count them on every version: from 3.11
    /// calling a generator or coroutine function runs its frame once (RETURN_GENERATOR), and that creation is neither
    /// an entry nor a return.
    /// </summary>
    private static void AssertExactCounts(TraceOutput output, string interpreter, string[]? probes = null)
    {
        // Before 3.12 the garbage collection of a generator that never started closes it by throwing GeneratorExit into
        // its frame: an activation (CPython's profiler sees it too); 3.12+ mark it completed without running it.
        var lazyClosings = int.Parse(interpreter.Split(':')[1].Split('.')[1]) < 12 ? 10 : 0;
        foreach (var probe in probes ?? ["function__entry", "function__return"])
        {
            Assert.Equal(8361, output.Count(probe, "funcname", "fib"));
            Assert.Equal(1000, CountEither(output, probe, "tick", "Counter.tick"));
            Assert.Equal(1001, output.Count(probe, "funcname", "numbers"));
            Assert.Equal(2, output.Count(probe, "funcname", "work"));
            Assert.Equal(4, output.Count(probe, "funcname", "ticks"));
            Assert.Equal(1, output.Count(probe, "funcname", "fails"));
            Assert.Equal(500, output.Count(probe, "funcname", "deep"));
            Assert.Equal(1000, CountInit(output, probe, "Point"));
            Assert.Equal(1000, output.Count(probe, "funcname", "norm"));
            Assert.Equal(10, CountInit(output, probe, "Broken"));
            Assert.Equal(lazyClosings, CountInit(output, probe, "Lazy"));
        }
        if (probes is null) AssertNested(output);
        Assert.All(output.OfProbe("function__entry").Where(e => e.GetProperty("funcname").GetString() == "fib"), e =>
        {
            Assert.Equal(Array.IndexOf(File.ReadAllLines(Workload), "def fib(n):") + 1, e.GetProperty("lineno").GetInt32());
            Assert.Equal(Workload, e.GetProperty("filename").GetString());
        });
    }

    /// <summary>
    /// Every return ends the thread's innermost open entry (same function), and nothing the workload opened is left open:
    /// an entry or a return missed or doubled anywhere (3.13's inline __init__ included) breaks the nesting.
    /// </summary>
    private static void AssertNested(TraceOutput output)
    {
        var open = new Dictionary<long, Stack<string>>();
        foreach (var e in output.Events)
        {
            var name = $"{e.GetProperty("filename").GetString()}:{e.GetProperty("funcname").GetString()}:{e.GetProperty("lineno").GetInt32()}";
            var stack = open.TryGetValue(e.GetProperty("tid").GetInt64(), out var s) ? s : open[e.GetProperty("tid").GetInt64()] = new();
            if (e.GetProperty("probe").GetString() == "function__entry") stack.Push(name);
            else if (stack.Count > 0) Assert.Equal(stack.Pop(), name);
        }
        Assert.All(open.Values, stack => Assert.DoesNotContain(stack, name => name.StartsWith(Workload + ":", StringComparison.Ordinal)));
    }

    /// <summary>Activations of <paramref name="cls"/>'s __init__ (co_name alone before 3.11: told apart by its first line).</summary>
    private static int CountInit(TraceOutput output, string probe, string cls)
    {
        var line = Array.IndexOf(File.ReadAllLines(Workload), $"class {cls}:") + 2;
        return output.OfProbe(probe).Count(e =>
        {
            var name = e.GetProperty("funcname").GetString();
            return (name == "__init__" || name == $"{cls}.__init__") && e.GetProperty("lineno").GetInt32() == line
                && e.GetProperty("filename").GetString() == Workload;
        });
    }

    private static int CountEither(TraceOutput output, string probe, string name, string qualified) =>
        output.Count(probe, "funcname", name) + output.Count(probe, "funcname", qualified);

    internal static List<HookState> HookStates(int pid)
    {
        using var process = CPythonProcess.Attach(pid);
        return process.Binary.Facts.HasEvalFrameHook ? EvalFrameHook.Inspect(process).ToList() : [];
    }


    /// <summary>The workload on <paramref name="interpreter"/> ("pyenv:3.12.1" or a Debian version), started and parked before its work; a missing interpreter fails the test.</summary>
    private static WaitingWorkload StartWorkload(string interpreter, params string[] options) => StartScript(Workload, interpreter, options);

    /// <summary>Any workload script that prints "ready" and waits for "go", started the same way.</summary>
    internal static WaitingWorkload StartScript(string script, string interpreter, params string[] options) =>
        StartScript(script, [], interpreter, options);

    /// <summary>The same, with arguments for the script.</summary>
    internal static WaitingWorkload StartScript(string script, IReadOnlyList<string> arguments, string interpreter, params string[] options)
    {
        var (kind, version) = (interpreter.Split(':')[0], interpreter.Split(':')[1]);
        List<string> command;
        if (kind == "pyenv")
        {
            var minor = string.Join('.', version.Split('.').Take(2));
            var binary = $"/root/.pyenv/versions/{version}/bin/python{minor}";
            if (!File.Exists(binary)) Assert.Fail($"{binary} is missing: install CPython {version} with pyenv");
            command = [binary, .. options, script, .. arguments];
        }
        else
        {
            var python = CachedPythons.Get(version);
            command = python.Command([.. options, script, .. arguments]);
        }
        return WaitingWorkload.Start(command);
    }
}
