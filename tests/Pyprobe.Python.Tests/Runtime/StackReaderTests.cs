using System.Diagnostics;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;
using Pyprobe.Usdt;
using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>
/// What `pyprobe dump` reads, with known answers: the main thread parked in a→b→c waiting on an
/// Event, a second thread sleeping in worker_loop; exact functions, file, lines and tids on every
/// interpreter, read only through /proc/PID/mem.
/// </summary>
public sealed class StackReaderTests
{
    private const string Script = """
        import threading, time, os
        ev = threading.Event()
        def c():
            ev.wait()
        def b():
            c()
        def a():
            b()
        def worker_loop():
            time.sleep(3600)
        t = threading.Thread(target=worker_loop, name="worker", daemon=True)
        t.start()
        time.sleep(0.1)
        print(threading.get_native_id(), t.native_id, flush=True)
        a()
        """;

    [Theory]
    [MemberData(nameof(LiveThreadStateTests.All), MemberType = typeof(LiveThreadStateTests))]
    public void Dump_shows_the_parked_threads_exactly(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        var ids = python.ReadyLine.Split(' ').Select(int.Parse).ToArray();
        Thread.Sleep(200);
        using var process = CPythonProcess.Attach(python.Pid);
        var threads = new StackReader(process).ReadAll();
        Assert.Equal(2, threads.Count);

        var main = Assert.Single(threads, t => t.Tid == ids[0]);
        var mine = main.Frames.Where(f => f.File == python.ScriptPath).Select(f => (f.Function, f.Line)).ToList();
        Assert.Equal([("c", 4), ("b", 6), ("a", 8), ("<module>", 15)], mine);
        // Innermost first: Event.wait (threading.py) sits above c.
        Assert.EndsWith("wait", main.Frames[0].Function);
        Assert.EndsWith("threading.py", main.Frames[0].File);

        var worker = Assert.Single(threads, t => t.Tid == ids[1]);
        Assert.Equal(("worker_loop", python.ScriptPath, 10), (worker.Frames[0].Function, worker.Frames[0].File, worker.Frames[0].Line));
        Assert.EndsWith("_bootstrap", worker.Frames[^1].Function);
        // Named as Python names them (the kernel's name is the executable's up to 3.13).
        Assert.Equal(("MainThread", "worker"), (main.Name, worker.Name));
        // Both wait with the GIL released.
        if (main.HoldsGil is not null) Assert.False(main.HoldsGil);
        if (worker.HoldsGil is not null) Assert.False(worker.HoldsGil);
    }

    /// <summary>
    /// A thread hashing 64 MiB with the GIL released is running (not idle) without the GIL; a thread asleep is not running;
    /// the GIL's holder (a spinning thread, or the hasher between two hashes) is seen holding it.
    /// </summary>
    [Theory]
    [InlineData("debian:3.9")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void A_thread_in_C_code_without_the_GIL_is_running_and_a_sleeping_one_is_not(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, """
            import hashlib, threading, time
            data = b"x" * (64 << 20)
            def hasher():
                while True:
                    hashlib.sha256(data).digest()
            t = threading.Thread(target=hasher, daemon=True)
            t.start()
            print(threading.get_native_id(), t.native_id, flush=True)
            time.sleep(3600)
            """);
        var ids = python.ReadyLine.Split(' ').Select(int.Parse).ToArray();
        Thread.Sleep(200); // the main thread on its way from print() into its sleep
        using var process = CPythonProcess.Attach(python.Pid);
        var seen = new List<(bool? Gil, bool? Running)>();
        for (int i = 0; i < 20 && !seen.Contains((false, true)); i++)
        {
            var threads = new StackReader(process).ReadAll();
            var main = Assert.Single(threads, t => t.Tid == ids[0]);
            Assert.Equal((false, false), (main.HoldsGil, main.Running));
            var hasher = Assert.Single(threads, t => t.Tid == ids[1]);
            seen.Add((hasher.HoldsGil, hasher.Running));
            Thread.Sleep(50);
        }
        Assert.Contains((false, true), seen);
    }

    [Fact]
    public void Non_python_and_missing_processes_are_one_line_errors()
    {
        using var sleep = Process.Start("/bin/sleep", "30");
        try
        {
            var e = Assert.Throws<NotAPythonProcessException>(() => CPythonProcess.Attach(sleep.Id));
            Assert.DoesNotContain('\n', e.Message);
        }
        finally { sleep.Kill(); }
        Assert.Throws<ProcessNotFoundException>(() => CPythonProcess.Attach(int.MaxValue));
        Assert.Throws<ProcessNotFoundException>(() => CPythonProcess.Attach(-1));
    }
}
