using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Links;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Tests.Runtime;

namespace Pyprobe.Python.Tests.EvalFrame;

/// <summary>
/// InterpreterCreationWatch on real interpreters: the constructor it stops at, and two subinterpreters made while it
/// watches each get the hook (one stop each), which is NULL again in all three interpreters once it is disposed.
/// </summary>
public class InterpreterCreationWatchTests
{
    // Two subinterpreters, kept alive (a dropped handle destroys its interpreter) until the process ends.
    private const string TwoSubinterpreters = """
        minor = sys.version_info[1]
        if minor <= 12:
            import _xxsubinterpreters as m
            kept = [m.create(), m.create()]
        elif minor == 13:
            import _interpreters as m
            kept = [m.create(), m.create()]
        else:
            from concurrent import interpreters
            kept = [interpreters.create(), interpreters.create()]
        """;

    // The same, made by two threads at once (the process stops whichever thread made one).
    private const string TwoSubinterpretersFromThreads = """
        import threading
        from concurrent import interpreters
        kept = []
        threads = [threading.Thread(target=lambda: kept.append(interpreters.create())) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        """;

    [Theory]
    [InlineData("pyenv:3.11.7", "PyInterpreterState_New")]
    [InlineData("pyenv:3.12.1", "PyInterpreterState_New")]
    [InlineData("pyenv:3.13.0", "_PyInterpreterState_New")]
    [InlineData("debian:3.13", "_PyInterpreterState_New")]
    [InlineData("debian:3.14", "_PyInterpreterState_New")]
    public void EachNewInterpreterGetsTheHookAndLosesItOnDispose(string interpreter, string constructor) =>
        Watch(interpreter, constructor, KernelFeatures.PreferredAttachMode, TwoSubinterpreters);

    [Fact]
    public void InterpretersMadeByOtherThreadsGetTheHook() =>
        Watch("debian:3.14", "_PyInterpreterState_New", KernelFeatures.PreferredAttachMode, TwoSubinterpretersFromThreads);

    /// <summary>The perf-event return probe (kernels without uprobe_multi) does the same.</summary>
    [Fact]
    public void PerfEventReturnProbeDoesTheSame() => Watch("pyenv:3.13.0", "_PyInterpreterState_New", UprobeAttachMode.PerfEvent, TwoSubinterpreters);

    private static void Watch(string interpreter, string constructor, UprobeAttachMode mode, string script)
    {
        Requirements.EnsureRoot();
        var command = Interpreters.Command(interpreter);
        using var workload = new PythonWorkload(command[^1], script, [.. command.SkipLast(1)]);
        using var process = CPythonProcess.Attach(workload.Pid);
        Assert.Equal(constructor, InterpreterCreationWatch.CreationFunction(process.Binary).Name);
        using (var watch = InterpreterCreationWatch.Start(mode, workload.Pid))
        {
            Assert.Equal(1, watch.Hook.Written);
            workload.RunMeasuredPart(TimeSpan.FromSeconds(30));
            Assert.Equal(2, watch.Covered);
            Assert.Equal(3, watch.Hook.Written);
            Assert.Equal([HookState.EvalFrameDefault, HookState.EvalFrameDefault, HookState.EvalFrameDefault], EvalFrameHook.Inspect(process));
        }
        Assert.Equal([HookState.Unset, HookState.Unset, HookState.Unset], EvalFrameHook.Inspect(process));
    }
}
