using System.Text.Json;
using System.Text.RegularExpressions;
using static Pyprobe.Analysis.Cli.Tests.AnalysisCli;
using Pyprobe.Cli.Tests;

namespace Pyprobe.Analysis.Cli.Tests;

/// <summary>`pyprobe flow`: nesting, durations and threads on real interpreters.</summary>
public class FlowTests
{
    private const string Nested =
        "import time\n" +
        "def b():\n    time.sleep(0.02)\n" +
        "def a():\n    b()\n" +
        "def main():\n    a()\n" +
        "main()\n";

    private static string Step(JsonElement e) =>
        $"{(e.GetProperty("event").GetString() == "entry" ? "->" : "<-")}{e.GetProperty("funcname").GetString()}@{e.GetProperty("depth").GetInt32()}";

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void NestingAndDurationsAreRight(string version)
    {
        var (result, json) = Run(version, Nested, "flow", "--format", "json", "--file", "<string>");
        Assert.Contains(", 0 lost", result.Stderr);
        var events = JsonLines(json);
        Assert.Equal(["-><module>@0", "->main@1", "->a@2", "->b@3", "<-b@3", "<-a@2", "<-main@1", "<-<module>@0"], events.Select(Step));
        Assert.All(events, e => Assert.Equal(events[0].GetProperty("tid").GetInt32(), e.GetProperty("tid").GetInt32()));
        var returns = events.Where(e => e.GetProperty("event").GetString() == "return").ToList();
        Assert.All(returns, e => Assert.InRange(e.GetProperty("duration_ns").GetInt64(), 20_000_000, 500_000_000));
        Assert.All(events.Where(e => e.GetProperty("event").GetString() == "entry"), e => Assert.False(e.TryGetProperty("duration_ns", out _)));
        var b = returns[0];
        Assert.Equal(["ts", "pid", "tid", "event", "depth", "filename", "funcname", "lineno", "duration_ns"], Keys(b));
        Assert.Equal(2, b.GetProperty("lineno").GetInt32()); // its code object's first line, as on entry
        Assert.Equal(2, events[3].GetProperty("lineno").GetInt32()); // the def line

        var (_, text) = Run(version, Nested, "flow", "--time", "none", "--file", "<string>");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(8, lines.Length);
        var tid = events[0].GetProperty("tid").GetInt32();
        string[] shapes =
        [
            @"-> <module> \(<string>:-?\d+\)",
            @"  -> main \(<string>:6\)",
            @"    -> a \(<string>:4\)",
            @"      -> b \(<string>:2\)",
            @"      <- b  (2\d\.\d|[3-9]\d\.\d|\d{3}) ms",
            @"    <- a  \d+(\.\d+)? ms",
            @"  <- main  \d+(\.\d+)? ms",
            @"<- <module>  \d+(\.\d+)? ms",
        ];
        for (var i = 0; i < 8; i++)
            Assert.Matches(new Regex($@"^\s*\d+  {shapes[i]}$"), lines[i]);
        Assert.All(lines, l => Assert.Matches(@"^\s*\d+  ", l));
        Assert.DoesNotContain("TIME(us)", text);
        _ = tid;
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void ThreadsAreKeptApart(string version)
    {
        const string script =
            "import threading, time\n" +
            "barrier = threading.Barrier(2)\n" +
            "def b():\n    time.sleep(0.02)\n" +
            "def a():\n    b()\n" +
            "def worker():\n    barrier.wait()\n    a()\n" +
            "threads = [threading.Thread(target=worker) for _ in range(2)]\n" +
            "for t in threads: t.start()\n" +
            "for t in threads: t.join()\n";
        var (_, json) = Run(version, script, "flow", "--format", "json", "--file", "<string>");
        var events = JsonLines(json).Where(e => e.GetProperty("funcname").GetString() is "worker" or "a" or "b").ToList();
        var byThread = events.GroupBy(e => e.GetProperty("tid").GetInt32()).ToList();
        Assert.Equal(2, byThread.Count);
        Assert.All(byThread, g => Assert.Equal(["->worker@0", "->a@1", "->b@2", "<-b@2", "<-a@1", "<-worker@0"], g.Select(Step)));
        Assert.All(events.Where(e => e.GetProperty("funcname").GetString() == "b" && e.GetProperty("event").GetString() == "return"),
            e => Assert.InRange(e.GetProperty("duration_ns").GetInt64(), 20_000_000, 500_000_000));
        // Both threads slept at the same time: their calls interleave in the output, and depth stays per thread.
        var firstReturn = events.FindIndex(e => e.GetProperty("event").GetString() == "return");
        Assert.Equal(2, events.Take(firstReturn).Select(e => e.GetProperty("tid").GetInt32()).Distinct().Count());
    }

    private const string Known =
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n" +
        "def gen(n):\n    for i in range(n):\n        yield i\n" +
        "class K:\n    def m(self):\n        return 1\n" +
        "def main():\n    fib(18)\n    for _ in gen(1000):\n        pass\n    k = K()\n    for _ in range(1000):\n        k.m()\n" +
        "main()\n";

    /// <summary>(event, name without its class, depth, line) of every event, returns paired with their entry's first line.</summary>
    private static List<(string Event, string Name, int Depth, int Line)> Shape(List<JsonElement> events) =>
        [.. events.Select(e => (e.GetProperty("event").GetString()!, e.GetProperty("funcname").GetString()!.Split('.')[^1],
            e.GetProperty("depth").GetInt32(), e.GetProperty("lineno").GetInt32()))];

    /// <summary>
    /// On builds with USDT function probes flow keys every event by its code object, as the eval-frame source does:
    /// a generator's 1001 activations (its first run and every resume) show at its def line with their returns
    /// paired, 3.15's extra entry for creating it is not shown, fib(18)'s 8361 nested calls pair, and the whole
    /// output has the shape of pyenv 3.12's (eval-frame hook) flow.
    /// </summary>
    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void EventsAreKeyedByCodeObjectAsOnTheHook(string version)
    {
        var (result, json) = Run(version, Known, "flow", "--format", "json", "--file", "<string>");
        Assert.Contains(", 0 lost", result.Stderr);
        var events = JsonLines(json);
        var shape = Shape(events);
        foreach (var (name, line, count) in new[] { ("fib", 1, 8361), ("gen", 3, 1001), ("m", 7, 1000), ("main", 9, 1) })
        {
            Assert.Equal(count, shape.Count(s => s is { Event: "entry" } && s.Name == name));
            Assert.Equal(count, shape.Count(s => s is { Event: "return" } && s.Name == name));
            Assert.All(shape.Where(s => s.Name == name), s => Assert.Equal(line, s.Line));
        }
        Assert.All(events.Where(e => e.GetProperty("event").GetString() == "return"), e => Assert.True(e.TryGetProperty("duration_ns", out _), e.ToString()));
        // Every generator activation at the same depth, just below main: none is nested in a creation that never returned.
        Assert.All(shape.Where(s => s.Name == "gen"), s => Assert.Equal(2, s.Depth));

        // From main's entry to its return (pyenv's site also runs .pth lines as "<string>" modules before it).
        var hook = InsideMain(Shape(JsonLines(RunPyenv("3.12.1", Known, "flow", "--format", "json", "--file", "<string>"))));
        Assert.Equal(hook, InsideMain(shape));
    }

    private static List<(string Event, string Name, int Depth, int Line)> InsideMain(List<(string Event, string Name, int Depth, int Line)> shape)
    {
        var start = shape.FindIndex(s => s is { Event: "entry", Name: "main" });
        var end = shape.FindIndex(s => s is { Event: "return", Name: "main" });
        Assert.True(start >= 0 && end > start, "main's entry and return");
        return shape[start..(end + 1)];
    }

    /// <summary>pyprobe ARGS -o FILE -- a pyenv build (no USDT probes) running SCRIPT; returns the file's text.</summary>
    private static string RunPyenv(string version, string script, params string[] args)
    {
        var minor = string.Join('.', version.Split('.').Take(2));
        var python = $"/root/.pyenv/versions/{version}/bin/python{minor}";
        if (!File.Exists(python)) Assert.Fail($"{python} is missing: install CPython {version} with pyenv");
        using var file = new TempFile();
        var result = PyprobeBinary.Run([.. args, "-o", file.Path, "--", python, "-c", script], timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(", 0 lost", result.Stderr);
        return File.ReadAllText(file.Path);
    }

    /// <summary>
    /// A generator, a coroutine and an async generator: the same activations through the eval-frame hook (Debian 3.13,
    /// 3.14, which run RETURN_GENERATOR in a frame of its own) as through 3.9's USDT probes — creating one is neither an
    /// entry nor a return, and the depths stay right.
    /// </summary>
    [Theory]
    [InlineData("3.9")]
    [InlineData("3.13")]
    [InlineData("3.14")]
    public void CreatingAGeneratorIsNoActivation(string version)
    {
        const string script =
            "import asyncio\n" +
            "def numbers():\n    yield 1\n    yield 2\n" +
            "async def ticks():\n    yield 1\n" +
            "async def work():\n    await asyncio.sleep(0)\n    async for _ in ticks():\n        pass\n" +
            "def main():\n    for _ in numbers():\n        pass\n    asyncio.run(work())\n" +
            "main()\n";
        var (result, json) = Run(version, script, "flow", "--format", "json", "--file", "<string>");
        Assert.Contains(", 0 lost", result.Stderr);
        var events = JsonLines(json).Where(e => e.GetProperty("funcname").GetString() is "main" or "numbers" or "work" or "ticks").ToList();
        Assert.Equal(
        [
            "->main", "->numbers", "<-numbers", "->numbers", "<-numbers", "->numbers", "<-numbers",
            "->work", "<-work", "->work", "->ticks", "<-ticks", "->ticks", "<-ticks", "<-work", "<-main",
        ], events.Select(e => (e.GetProperty("event").GetString() == "entry" ? "->" : "<-") + e.GetProperty("funcname").GetString()));
        var main = events[0].GetProperty("depth").GetInt32();
        Assert.All(events.Where(e => e.GetProperty("funcname").GetString() == "numbers"), e => Assert.Equal(main + 1, e.GetProperty("depth").GetInt32()));
        Assert.Equal(main, events[^1].GetProperty("depth").GetInt32());
    }
}

