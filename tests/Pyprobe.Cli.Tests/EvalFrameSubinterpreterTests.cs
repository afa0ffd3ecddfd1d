using Pyprobe.Python.EvalFrame;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// A subinterpreter created after pyprobe attached gets the eval-frame hook too (InterpreterCreationWatch): every call
/// in it is seen, exactly, and after pyprobe leaves both interpreters' hooks read back NULL while the program runs on.
/// </summary>
public class EvalFrameSubinterpreterTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "subinterpreter_counts.py");

    [Theory]
    [InlineData("pyenv:3.12.1")] // _xxsubinterpreters
    [InlineData("pyenv:3.13.0")] // _interpreters
    [InlineData("debian:3.14")] // concurrent.interpreters
    public void SubinterpreterMadeAfterAttachingIsTracedExactlyAndItsHookRestored(string interpreter)
    {
        using var target = EvalFrameTraceTests.StartScript(Workload, interpreter);
        Assert.Equal([HookState.Unset], EvalFrameTraceTests.HookStates(target.Pid));
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString()], out _);
        target.Go();
        Assert.Equal("done", target.ReadLine());
        // The new interpreter (listed first: CPython puts it at the head) was given the hook when it was made.
        Assert.Equal([HookState.EvalFrameDefault, HookState.EvalFrameDefault], EvalFrameTraceTests.HookStates(target.Pid));

        AttachedTracer.Signal(trace.Id, "TERM");
        var (exit, _, stderr) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Contains(", 0 lost", stderr);
        var output = new TraceOutput(File.ReadAllText(json.Path));
        foreach (var probe in new[] { "function__entry", "function__return" })
        {
            Assert.Equal(8361, output.Count(probe, "funcname", "fib")); // fib(18), all of it in the subinterpreter
            Assert.Equal(1500, output.Count(probe, "funcname", "tick")); // the main interpreter, before and after
        }
        Assert.False(target.Process.HasExited);
        Assert.Equal([HookState.Unset, HookState.Unset], EvalFrameTraceTests.HookStates(target.Pid));
    }

    [Fact]
    public void SubinterpreterDestroyedWhileAttachedIsLeftOutOfTheRestore()
    {
        const string python = "/root/.pyenv/versions/3.13.0/bin/python3.13";
        if (!File.Exists(python)) Assert.Fail($"{python} is missing: install CPython 3.13.0 with pyenv");
        using var target = WaitingWorkload.Start([python, Workload, "--close"]);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString()], out _);
        target.Go();
        Assert.Equal("done", target.ReadLine());
        Assert.Equal([HookState.EvalFrameDefault], EvalFrameTraceTests.HookStates(target.Pid));

        AttachedTracer.Signal(trace.Id, "TERM");
        var (exit, _, stderr) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Equal(8361, new TraceOutput(File.ReadAllText(json.Path)).Count("function__entry", "funcname", "fib"));
        Assert.Equal([HookState.Unset], EvalFrameTraceTests.HookStates(target.Pid));
        // The program runs on unharmed to its normal end.
        target.Go();
        Assert.True(target.Process.WaitForExit(10_000));
        Assert.Equal(0, target.Process.ExitCode);
    }
}
