using System.Diagnostics;
using Pyprobe.Usdt.Unwind;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// A real CPython in time.sleep, stopped with ptrace as a sampler would catch it: its native stack unwinds from libc's
/// system call through the interpreter's C functions (Debian's executables have .dynsym only, so the static ones show
/// as python3.X+0x...) to _start.
/// </summary>
public class PythonProcessUnwindTests(ITestOutputHelper output)
{
    // The frames of `python3.X -c "...; time.sleep(30)"`, "?" for a function of the executable that is not exported.
    // 3.9 sleeps in select() (pysleep), 3.11 in clock_nanosleep(); 3.11 evaluates Python calls without recursing in C.
    public static TheoryData<string, string[]> Expected => new()
    {
        { "3.9", ["select", "?", "?", "_PyEval_EvalFrameDefault", "?", "_PyEval_EvalCodeWithName", "PyEval_EvalCode", "?", "?",
            "PyRun_StringFlags", "PyRun_SimpleStringFlags", "Py_RunMain", "Py_BytesMain", "libc", "__libc_start_main", "_start"] },
        { "3.11", ["clock_nanosleep", "?", "?", "PyObject_Vectorcall", "_PyEval_EvalFrameDefault", "PyEval_EvalCode", "?", "?",
            "PyRun_StringFlags", "PyRun_SimpleStringFlags", "Py_RunMain", "Py_BytesMain", "libc", "__libc_start_main", "_start"] },
    };

    [Theory]
    [MemberData(nameof(Expected))]
    public void SleepingDebianPython_UnwindsToStart(string version, string[] expected)
    {
        if (TestPythons.Get(version, output) is not { } python) return;
        using var process = RunningProcess.Python(python.LauncherPath);
        WaitUntilSleeping(process.Pid);
        ThreadRegisters registers;
        byte[] stack;
        using (var paused = PausedProcess.Pause(process.Pid))
        {
            registers = paused.Registers(process.Pid);
            stack = paused.ReadStack(process.Pid, registers.Sp, 32 << 10);
        }
        var modules = NativeModules.ForProcess(process.Pid);
        var unwind = NativeUnwinder.Unwind(registers.Ip, registers.Sp, registers.Bp, stack, modules, 128);
        var names = unwind.ProgramCounters.Select((pc, i) => NativeSymbolizer.Describe(modules, pc, i > 0)).ToList();
        output.WriteLine($"{string.Join("\n", names)}\n({unwind.Stop}, {stack.Length} bytes of stack)");
        Assert.Equal(NativeUnwindStop.Complete, unwind.Stop);
        // libc's static __libc_start_call_main is "libc" (file+offset), or its name where libc's debug file is installed (libc6-dbg).
        var libc = modules.Modules.First(m => Path.GetFileName(m.Path) == "libc.so.6");
        var startCallMain = DebugSymbolFiles.SeparateDebugFile(libc.Elf) is null ? "libc.so.6+0x" : "__libc_start_call_main";
        Assert.Equal(expected, names.Select(n => n.StartsWith($"python{version}+0x", StringComparison.Ordinal) ? "?" : n.StartsWith(startCallMain, StringComparison.Ordinal) ? "libc" : n));

        // How fast: the same sample again and again, module lookups and table rows included (no symbolization).
        Span<ulong> counters = stackalloc ulong[128];
        const int samples = 20_000;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < samples; i++)
            NativeUnwinder.Unwind(registers.Ip, registers.Sp, registers.Bp, stack, modules, counters, out _);
        output.WriteLine($"{samples / clock.Elapsed.TotalSeconds:N0} unwinds/s of {names.Count} frames");
    }

    /// <summary>Until the main thread sleeps in a system call: past print("ready"), inside time.sleep.</summary>
    private static void WaitUntilSleeping(int pid)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('S') && File.ReadAllText($"/proc/{pid}/syscall").Split(' ')[0] is "270" or "230") // pselect6 (glibc's select), clock_nanosleep
                return;
            Thread.Sleep(5);
        }
        throw new TimeoutException($"python {pid} did not go to sleep");
    }
}
