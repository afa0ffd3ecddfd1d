using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// <c>--format chrome</c> on real interpreters: the timeline of Workloads/timeline.py has exactly the calls, gc pauses
/// and imports the program makes, every call nested within its caller on its thread, names for the process and its
/// thread, and the call still running when --duration ends closed there and marked.
/// </summary>
public class ChromeTraceTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "timeline.py");

    [Fact]
    public void Trace_on_3_9_with_probes_draws_calls_gc_and_imports_as_nested_slices()
    {
        using var target = WaitingWorkload.Start(CachedPythons.Get("3.9").Command(Workload));
        using var file = new TempFile();
        // function__entry alone: the chrome format adds function__return, since a call is a slice from one to the other.
        var trace = Run(target, ["trace", "function__entry", "gc__start", "gc__done", "import__find__load__start", "import__find__load__done",
            "--format", "chrome", "-o", file.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "6"]);
        Assert.Contains("function__return", trace.Split('\n')[0]);

        var events = ChromeTrace.Read(file.Path);
        Assert.Equal(8361, events.Slices("fib").Count);
        Assert.All(events.Slices("fib"), e => Assert.Equal(18, e.GetProperty("args").GetProperty("line").GetInt32()));
        Assert.Equal(3, events.Slices("gc").Count);
        Assert.All(events.Slices("gc"), e => Assert.Equal(2, e.GetProperty("args").GetProperty("generation").GetInt32()));
        Assert.True(events.Slices("import json").Single().GetProperty("args").GetProperty("found").GetBoolean());
        Assert.Single(events.Slices("import json.decoder"));
        Assert.Single(events.Slices("collect"));
        events.AssertNested(target.Pid);
        events.AssertNamed(target.Pid, "timeline.py");
        events.AssertOnlySleeperUnfinished(target.Pid);
    }

    [Fact]
    public void Flow_on_3_12_through_the_eval_frame_hook_draws_every_call()
    {
        using var target = WaitingWorkload.Start(["/root/.pyenv/versions/3.12.1/bin/python3.12", Workload]);
        using var file = new TempFile();
        var flow = Run(target, ["flow", "--format", "chrome", "-o", file.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "6"]);
        Assert.Contains("_PyEval_EvalFrameDefault", flow);

        var events = ChromeTrace.Read(file.Path);
        Assert.Equal(8361, events.Slices("fib").Count);
        Assert.Single(events.Slices("collect"));
        Assert.Single(events.Slices("load"));
        events.AssertNested(target.Pid);
        events.AssertNamed(target.Pid, "timeline.py");
        events.AssertOnlySleeperUnfinished(target.Pid);
    }

    [Fact]
    public void Gc_and_imports_commands_write_their_slices()
    {
        foreach (var (command, check) in new (string, Action<ChromeTrace>)[]
        {
            ("gc", t => Assert.Equal(3, t.Slices("gc").Count)),
            ("imports", t => Assert.Contains(t.Events, e => e.GetProperty("name").GetString() == "import json" && e.GetProperty("ph").GetString() == "X")),
        })
        {
            using var target = WaitingWorkload.Start(CachedPythons.Get("3.9").Command(Workload));
            using var file = new TempFile();
            Run(target, [command, "--format", "chrome", "-o", file.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "4"]);
            var events = ChromeTrace.Read(file.Path);
            check(events);
            events.AssertNested(target.Pid);
            events.AssertNamed(target.Pid, "timeline.py");
        }
    }

    [Fact]
    public void Audit_events_are_instants_with_their_arguments()
    {
        using var target = WaitingWorkload.Start(CachedPythons.Get("3.9").Command(Workload));
        using var file = new TempFile();
        Run(target, ["audit", "--event", "pyprobe.*", "--format", "chrome", "-o", file.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "4"]);
        var events = ChromeTrace.Read(file.Path);
        var audits = events.Events.Where(e => e.GetProperty("ph").GetString() == "i").ToList();
        Assert.Equal(["0", "1"], audits.Select(e => e.GetProperty("args").GetProperty("args").GetString()));
        Assert.All(audits, e =>
        {
            Assert.Equal("pyprobe.timeline", e.GetProperty("name").GetString());
            Assert.Equal("audit", e.GetProperty("cat").GetString());
            Assert.Equal("t", e.GetProperty("s").GetString());
            Assert.Equal(target.Pid, e.GetProperty("tid").GetInt32());
        });
        events.AssertNamed(target.Pid, "timeline.py");
    }

    /// <summary>Attaches, lets the workload run to its sleep, waits for --duration to end pyprobe; its stderr.</summary>
    private static string Run(WaitingWorkload target, string[] args)
    {
        using var tracer = AttachedTracer.Start(args, out var attached);
        target.Go();
        Assert.Equal("sleeping", target.ReadLine());
        var (exit, _, stderr) = AttachedTracer.Finish(tracer, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Contains(", 0 lost", stderr);
        return attached + "\n" + stderr;
    }

    /// <summary>A chrome trace file read back with a JSON parser; what the viewers are given.</summary>
    private sealed class ChromeTrace(List<JsonElement> events)
    {
        public List<JsonElement> Events => events;

        public static ChromeTrace Read(string path)
        {
            var text = File.ReadAllText(path);
            Assert.StartsWith("[\n", text);
            Assert.EndsWith("\n]\n", text);
            using var document = JsonDocument.Parse(text);
            return new ChromeTrace([.. document.RootElement.EnumerateArray().Select(e => e.Clone())]);
        }

        public List<JsonElement> Slices(string name) =>
            [.. events.Where(e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("name").GetString() == name)];

        /// <summary>Every slice lies within the one that contains its start on the same thread (ns, exactly).</summary>
        public void AssertNested(int pid)
        {
            var slices = events.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
            Assert.NotEmpty(slices);
            Assert.All(slices, e => Assert.Equal(pid, e.GetProperty("pid").GetInt32()));
            foreach (var thread in slices.GroupBy(e => e.GetProperty("tid").GetInt32()))
            {
                var open = new Stack<(long Start, long End, string Name)>();
                foreach (var (start, end, name) in thread.Select(e => (Ns(e, "ts"), Ns(e, "ts") + Ns(e, "dur"), e.GetProperty("name").GetString()!))
                             .OrderBy(s => s.Item1).ThenByDescending(s => s.Item2))
                {
                    while (open.Count > 0 && open.Peek().End <= start) open.Pop();
                    if (open.Count > 0)
                        Assert.True(end <= open.Peek().End, $"{name} [{start}, {end}] overlaps {open.Peek().Name} [{open.Peek().Start}, {open.Peek().End}] on thread {thread.Key}");
                    open.Push((start, end, name));
                }
            }
        }

        /// <summary>The process is named by its command line, and every thread with an event by a thread_name: the main thread by its Python name.</summary>
        public void AssertNamed(int pid, string commandPart)
        {
            var process = events.Single(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "process_name");
            Assert.Equal(pid, process.GetProperty("pid").GetInt32());
            Assert.Contains(commandPart, process.GetProperty("args").GetProperty("name").GetString());
            var named = events.Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name")
                .ToDictionary(e => e.GetProperty("tid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString());
            Assert.Equal("timeline-main (main thread)", named[pid]);
            Assert.All(events.Where(e => e.GetProperty("ph").GetString() != "M"), e => Assert.True(named.ContainsKey(e.GetProperty("tid").GetInt32())));
        }

        /// <summary>sleeper is the one call open when --duration ended: closed at the end (after everything else), marked.</summary>
        public void AssertOnlySleeperUnfinished(int pid)
        {
            var unfinished = events.Where(e => e.TryGetProperty("args", out var a) && a.TryGetProperty("unfinished", out _)).ToList();
            var sleeper = Assert.Single(unfinished);
            Assert.Equal("sleeper", sleeper.GetProperty("name").GetString());
            Assert.Equal("X", sleeper.GetProperty("ph").GetString());
            Assert.Equal(pid, sleeper.GetProperty("tid").GetInt32());
            Assert.True(Ns(sleeper, "dur") > 1_000_000, "sleeper lasted until tracing stopped");
            var end = Ns(sleeper, "ts") + Ns(sleeper, "dur");
            Assert.All(events.Where(e => e.GetProperty("ph").GetString() == "X"), e => Assert.True(Ns(e, "ts") + Ns(e, "dur") <= end));
            Assert.DoesNotContain(Slices("sleeper"), e => !e.GetProperty("args").TryGetProperty("unfinished", out _));
        }

        private static long Ns(JsonElement e, string property) =>
            (long)(decimal.Parse(e.GetProperty(property).GetRawText(), CultureInfo.InvariantCulture) * 1000);
    }
}
