using System.Text.Json;
using System.Text.RegularExpressions;
using static Pyprobe.Analysis.Cli.Tests.AnalysisCli;

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
        Assert.Equal(3, b.GetProperty("lineno").GetInt32()); // the line that returned
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

