using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>
/// The model against live processes, read through /proc/PID/mem: the interpreter's thread list
/// holds one thread state per Python thread with the kernel's tids (3.11+: native_thread_id); the
/// thread-local _Py_tss_tstate (3.12+, offset decoded from machine code) and the GIL holder
/// (≤3.11) point at the thread state of the thread that spins holding the GIL.
/// </summary>
public sealed class LiveThreadStateTests
{
    private const string Script = """
        import threading, time, sys
        def sleeper():
            time.sleep(3600)
        t = threading.Thread(target=sleeper, name="sleeper", daemon=True)
        t.start()
        time.sleep(0.2)
        print("parked", flush=True)
        while True:
            pass
        """;

    public static TheoryData<string> All => ["pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0",
        "debian:3.9", "debian:3.11", "debian:3.13", "debian:3.14", "debian:3.15"];

    [Theory]
    [MemberData(nameof(All))]
    public void Thread_states_tls_and_gil_holder_point_at_the_right_threads(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        using var process = CPythonProcess.Attach(python.Pid);
        var layout = process.Layout;
        var tstates = process.Interpreters().SelectMany(i => process.ThreadStates(i)).ToList();
        Assert.Equal(2, tstates.Count);

        var tasks = Directory.GetDirectories($"/proc/{python.Pid}/task").Select(d => int.Parse(Path.GetFileName(d))).ToHashSet();
        ulong main = 0;
        foreach (var t in tstates)
        {
            if (layout.ThreadState.NativeThreadId is int nativeOffset)
            {
                var tid = (int)process.Memory.ReadU64(t + (ulong)nativeOffset);
                Assert.Contains(tid, tasks);
                if (tid == python.Pid) main = t;
            }
        }
        // Before 3.11 there is no native id: the main thread is the last created, i.e. the tail of the list (new threads are pushed at the head).
        if (layout.ThreadState.NativeThreadId is null) main = tstates[^1];
        Assert.NotEqual(0UL, main);

        var facts = process.Binary.Facts;
        if (facts.RecordsGilHolder)
        {
            var holder = process.RuntimeAddress + (ulong)layout.Runtime.GilHolder!.Value;
            Assert.True(SeenWithin(() => process.Memory.ReadU64(holder) == main), "the GIL holder never was the spinning main thread");
        }
        if (facts.HasThreadLocalThreadState)
        {
            Assert.NotNull(process.Binary.ThreadStateTls);
            foreach (var t in tstates)
            {
                ulong threadPointer = process.Memory.ReadU64(t + (ulong)layout.ThreadState.ThreadId);
                long offset = process.ThreadStateTlsOffset(threadPointer)!.Value;
                ulong slot = (ulong)((long)threadPointer + offset);
                // A thread's slot holds its own thread state while attached, NULL while detached (sleeping).
                for (int i = 0; i < 200; i++)
                    Assert.Contains(process.Memory.ReadU64(slot), new[] { 0UL, t });
                if (t == main)
                    Assert.True(SeenWithin(() => process.Memory.ReadU64(slot) == main), "_Py_tss_tstate of the spinning thread never held its thread state");
            }
        }
    }

    private static bool SeenWithin(Func<bool> check)
    {
        for (int i = 0; i < 5000; i++)
            if (check()) return true;
        return false;
    }
}
