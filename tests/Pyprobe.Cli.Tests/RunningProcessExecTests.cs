using System.Globalization;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// A process traced with -p that runs a new program in itself (os.execv of its own interpreter: same pid). The new
/// program is stopped where its interpreter starts and attached again — on 3.12 with the eval-frame hook written into
/// its new interpreter (read back while traced, NULL again after Ctrl-C) — its old program's probes closed first, so
/// fib(18) in the new program counts exactly 8361 entries and returns, once; stderr says what happened.
/// </summary>
public class RunningProcessExecTests
{
    private const string Script = """
        import os, sys
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        if len(sys.argv) == 1:
            print("ready", flush=True)
            sys.stdin.readline()
            os.execv(sys.executable, [sys.executable, sys.argv[0], "again"])
        print("new program", flush=True)
        sys.stdin.readline()
        print(fib(18), flush=True)
        sys.stdin.readline()
        """;

    [Theory]
    [InlineData("pyenv:3.9.18")]
    [InlineData("pyenv:3.12.1")]
    public void ANewProgramOfATracedProcessIsTracedAgainExactly(string interpreter)
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, Script);
        using var target = EvalFrameTraceTests.StartScript(script.Path, interpreter);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "60"], out _);
        target.Go();
        Assert.Equal("new program", target.ReadLine());
        var hooked = interpreter == "pyenv:3.12.1";
        if (hooked) Assert.Equal([HookState.EvalFrameDefault], HookStates(target.Pid));
        target.Go();
        Assert.Equal("2584", target.ReadLine());
        var stderr = AttachedTracer.Interrupt(trace);
        Assert.Contains($"pyprobe: pid {target.Pid} ran a new program ", stderr);
        if (hooked) Assert.Equal([HookState.Unset], HookStates(target.Pid));

        var events = new TraceOutput(File.ReadAllText(json.Path)).Events.Where(e => e.GetProperty("funcname").GetString() == "fib").ToList();
        Assert.Equal(8361, events.Count(e => e.GetProperty("probe").GetString() == "function__entry"));
        Assert.Equal(8361, events.Count(e => e.GetProperty("probe").GetString() == "function__return"));
        Assert.All(events, e => Assert.Equal(target.Pid, e.GetProperty("pid").GetInt32()));
        target.Go();
    }

    private static List<HookState> HookStates(int pid)
    {
        using var process = CPythonProcess.Attach(pid);
        return EvalFrameHook.Inspect(process).ToList();
    }
}
