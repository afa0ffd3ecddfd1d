using System.Text.Json;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;
using Pyprobe.Python.Tests.Runtime;
using Pyprobe.Python.Threads;

namespace Pyprobe.Python.Tests.Threads;

/// <summary>
/// The names Python gave its threads, read from the process's memory, against what the process itself says: a renamed
/// main thread, a name longer than the kernel's 15 bytes, a non-ASCII name on a Thread subclass, a default name on a
/// thread whose attributes were moved into a dict of their own (vars(): 3.11+ then keep no values apart), and a thread
/// started with _thread (no threading.Thread: named by the kernel) — on every interpreter, read only.
/// </summary>
public sealed class PythonThreadNamesTests
{
    private const string Script = """
        import _thread, json, threading, time
        threading.current_thread().name = "main loop"
        def park():
            time.sleep(3600)
        class Poller(threading.Thread):
            def run(self):
                time.sleep(3600)
        long_name = threading.Thread(target=park, name="download-worker-with-a-long-name", daemon=True)
        poller = Poller(name="pöller-ü", daemon=True)
        default = threading.Thread(target=park, daemon=True)
        vars(default)["extra"] = 1
        for t in (long_name, poller, default):
            t.start()
        raw = []
        def unnamed():
            raw.append(threading.get_native_id())
            time.sleep(3600)
        _thread.start_new_thread(unnamed, ())
        while not raw:
            time.sleep(0.01)
        print(json.dumps({"names": {str(t.native_id): t.name for t in threading.enumerate()}, "raw": raw[0]}), flush=True)
        time.sleep(3600)
        """;

    [Theory]
    [MemberData(nameof(LiveThreadStateTests.All), MemberType = typeof(LiveThreadStateTests))]
    public void Every_threading_Thread_is_named_as_Python_names_it(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        using var said = JsonDocument.Parse(python.ReadyLine);
        var expected = said.RootElement.GetProperty("names").EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value.GetString()!);
        var rawTid = said.RootElement.GetProperty("raw").GetInt32();
        Assert.Equal(4, expected.Count);
        Assert.Equal(["download-worker-with-a-long-name", "main loop", "pöller-ü"], expected.Values.Where(n => !n.StartsWith("Thread-", StringComparison.Ordinal)).Order());

        using var process = CPythonProcess.Attach(python.Pid);
        var names = new PythonThreadNames(process).Read();
        Assert.Equal(expected.OrderBy(p => p.Key), names.OrderBy(p => p.Key));
        Assert.Equal(python.Pid, names.Single(n => n.Value == "main loop").Key);

        // dump: every Python thread by its Python name; the one threading does not know by the kernel's.
        var threads = new StackReader(process).ReadAll();
        Assert.Equal(5, threads.Count);
        foreach (var (tid, name) in expected) Assert.Equal(name, Assert.Single(threads, t => t.Tid == tid).Name);
        var comm = File.ReadAllText($"/proc/{python.Pid}/task/{rawTid}/comm").TrimEnd('\n');
        Assert.Equal(comm, Assert.Single(threads, t => t.Tid == rawTid).Name);
        Assert.DoesNotContain(rawTid, names.Keys);
    }

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.9")]
    public void A_process_that_never_imported_threading_has_no_names(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, """
            import sys, time
            print("threading" in sys.modules, flush=True)
            time.sleep(3600)
            """);
        Assert.Equal("False", python.ReadyLine);
        using var process = CPythonProcess.Attach(python.Pid);
        Assert.Empty(new PythonThreadNames(process).Read());
        var main = Assert.Single(new StackReader(process).ReadAll());
        Assert.Equal(File.ReadAllText($"/proc/{python.Pid}/comm").TrimEnd('\n'), main.Name);
    }
}
