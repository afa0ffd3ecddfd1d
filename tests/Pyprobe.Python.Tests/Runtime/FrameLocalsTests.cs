using System.Text.Json;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>
/// What `pyprobe dump --locals` reads, against what the process itself says: a function parked with arguments (one a
/// closure shares, so a cell), *args, a keyword-only default, **kwargs, and locals of each kind ValueRepr writes out;
/// the texts equal Python's own repr() (a str cut at 80 characters) or the type, size and id() it names — on every
/// interpreter, read only.
/// </summary>
public sealed class FrameLocalsTests
{
    private const string Script = """
        import json, threading, time
        class Order:
            pass
        ready = threading.Event()
        said = {}
        def work(n, name, *args, flag=True, **kw):
            total = 2.5
            big = 2**100
            neg = -7
            data = b"ab\x00'c"
            items = [1, 2, 3]
            mapping = {"a": 1}
            order = Order()
            text = "x" * 200
            nothing = None
            def inner():
                return n
            said.update(n=repr(n), name=repr(name), args="<tuple of 1>", flag=repr(flag), kw="<dict of 1>", total=repr(total),
                        big=repr(big), neg=repr(neg), data=repr(data), items="<list of 3>", mapping="<dict of 1>",
                        order=f"<Order object at {id(order):#x}>", text=repr(text[:80]) + "...", nothing=repr(nothing),
                        inner=f"<function object at {id(inner):#x}>", tid=str(threading.get_native_id()))
            ready.set()
            time.sleep(3600)
        threading.Thread(target=work, args=(3, "héllo\n", 9), kwargs={"extra": 1}, daemon=True).start()
        ready.wait()
        print(json.dumps(said), flush=True)
        time.sleep(3600)
        """;

    [Theory]
    [MemberData(nameof(LiveThreadStateTests.All), MemberType = typeof(LiveThreadStateTests))]
    public void Locals_read_from_memory_equal_what_the_process_says(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        var said = JsonSerializer.Deserialize<Dictionary<string, string>>(python.ReadyLine)!;
        var tid = int.Parse(said["tid"]);
        said.Remove("tid");
        Assert.Equal("'héllo\\n'", said["name"]);
        Assert.Equal("b\"ab\\x00'c\"", said["data"]);

        using var process = CPythonProcess.Attach(python.Pid);
        var threads = new StackReader(process).ReadAll(locals: true);
        var worker = Assert.Single(threads, t => t.Tid == tid);
        Assert.Equal("work", worker.Frames[0].Function);
        Assert.NotNull(worker.Locals);
        Assert.Equal(worker.Frames.Count, worker.Locals.Count);
        var locals = worker.Locals[0];
        Assert.Equal(said.OrderBy(p => p.Key), locals.Select(v => KeyValuePair.Create(v.Name, v.Value)).OrderBy(p => p.Key));
        // Arguments first, in their order; before 3.11 an argument a closure shares is kept in its cell, after the locals.
        var order = locals.Select(v => v.Name).ToList();
        var arguments = process.Binary.Version.Minor >= 11 ? new[] { "n", "name", "flag", "args", "kw" } : ["name", "flag", "args", "kw"];
        Assert.Equal(arguments, order.Take(arguments.Length));
        if (process.Binary.Version.Minor < 11) Assert.Equal("n", order[^1]);
        // The parameters are told apart from the other locals (co_argcount, co_kwonlyargcount, *args and **kwargs from
        // co_flags), also the one in its cell.
        Assert.Equal(["args", "flag", "kw", "n", "name"], locals.Where(v => v.IsArgument).Select(v => v.Name).Order(StringComparer.Ordinal));
        // Without --locals nothing of it is read.
        Assert.All(new StackReader(process).ReadAll(), t => Assert.Null(t.Locals));
    }
}
