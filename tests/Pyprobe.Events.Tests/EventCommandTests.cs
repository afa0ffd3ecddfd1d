using System.Text.Json;
using System.Text.RegularExpressions;

using Pyprobe.Cli.Tests;

namespace Pyprobe.Events.Tests;

/// <summary>pyprobe gc, imports and audit against real interpreters, with exact expectations.</summary>
public class EventCommandTests
{
    private static List<JsonElement> JsonLines(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.13")]
    [InlineData("3.14")]
    [InlineData("3.15")]
    public void GcShowsSevenForcedCollectionsAndTheirSummary(string version)
    {
        using var workload = new Workload(CachedPythons.Get(version));
        var result = workload.Trace("gc", "--format", "json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = JsonLines(result.Stdout);
        var rows = lines.Where(l => l.TryGetProperty("generation", out _)).ToList();
        Assert.Equal(7, rows.Count);
        Assert.Equal([0, 1, 2, 0, 1, 2, 0], rows.Select(r => r.GetProperty("generation").GetInt32()));
        Assert.All(rows, r =>
        {
            Assert.Equal(workload.Pid, r.GetProperty("pid").GetInt32());
            Assert.True(r.GetProperty("duration_ns").GetInt64() > 0);
            Assert.True(r.GetProperty("collected").GetInt64() >= 0);
            Assert.True(r.GetProperty("ts").GetInt64() > 0);
        });
        var summary = Assert.Single(lines, l => l.TryGetProperty("summary", out var s) && s.GetString() == "gc");
        Assert.Equal(7, summary.GetProperty("collections").GetInt32());
        var generations = summary.GetProperty("generations").EnumerateArray().ToDictionary(g => g.GetProperty("generation").GetInt32(), g => g.GetProperty("count").GetInt32());
        Assert.Equal(new Dictionary<int, int> { [0] = 3, [1] = 2, [2] = 2 }, generations);
        Assert.Equal(7, summary.GetProperty("pause_histogram").EnumerateArray().Sum(b => b.GetProperty("count").GetInt32()));
        Assert.Contains("14 events delivered, 0 lost", result.Stderr);
    }

    [Fact]
    public void GcTextHasRowsSummaryAndHistogram()
    {
        using var workload = new Workload(CachedPythons.Get("3.11"));
        var result = workload.Trace("gc");
        Assert.True(result.ExitCode == 0, result.ToString());
        var rows = result.StdoutLines.Where(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d +[012] +[\d.]+ (ns|us|ms|s) +\d+$")).ToList();
        Assert.Equal(7, rows.Count);
        Assert.Contains("7 collections", result.Stdout);
        Assert.Matches(@"(?m)^  0 +3 ", result.Stdout);
        Assert.Matches(@"(?m)^  1 +2 ", result.Stdout);
        Assert.Matches(@"(?m)^  2 +2 ", result.Stdout);
        Assert.Contains("gc pauses:", result.Stdout);
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.13")]
    [InlineData("3.15")]
    public void ImportsShowNestingFoundFlagsAndDurations(string version)
    {
        using var workload = new Workload(CachedPythons.Get(version));
        var result = workload.Trace("imports", "--format", "json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = JsonLines(result.Stdout);
        var loads = lines.Where(l => l.TryGetProperty("module", out _)).ToDictionary(l => l.GetProperty("module").GetString()!);
        var parent = loads["parent"];
        Assert.Equal(0, parent.GetProperty("depth").GetInt32());
        Assert.Equal(JsonValueKind.Null, parent.GetProperty("parent").ValueKind);
        Assert.True(parent.GetProperty("found").GetBoolean());
        foreach (var child in new[] { "child_a", "child_b" })
        {
            Assert.Equal(1, loads[child].GetProperty("depth").GetInt32());
            Assert.Equal("parent", loads[child].GetProperty("parent").GetString());
            Assert.True(loads[child].GetProperty("found").GetBoolean());
            Assert.True(loads[child].GetProperty("duration_ns").GetInt64() > 0);
        }
        var childTotal = loads["child_a"].GetProperty("duration_ns").GetInt64() + loads["child_b"].GetProperty("duration_ns").GetInt64();
        Assert.True(parent.GetProperty("duration_ns").GetInt64() > childTotal);
        Assert.Equal(parent.GetProperty("duration_ns").GetInt64() - childTotal, parent.GetProperty("self_ns").GetInt64());
        var missing = loads["pyprobe_missing_module"];
        Assert.False(missing.GetProperty("found").GetBoolean());
        Assert.Equal(0, missing.GetProperty("depth").GetInt32());
        Assert.Equal(4, lines.Count(l => l.TryGetProperty("module", out _)));
        var summary = Assert.Single(lines, l => l.TryGetProperty("summary", out _));
        Assert.Equal("parent", summary.GetProperty("slowest")[0].GetProperty("module").GetString());
        Assert.Equal(1, summary.GetProperty("not_found").GetInt32());
    }

    [Fact]
    public void ImportsTextIndentsNestedModules()
    {
        using var workload = new Workload(CachedPythons.Get("3.9"));
        var result = workload.Trace("imports");
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.StdoutLines;
        var a = Array.FindIndex(lines, l => Regex.IsMatch(l, @"^ +\d+ \| +\d+ \|   child_a$"));
        var b = Array.FindIndex(lines, l => Regex.IsMatch(l, @"^ +\d+ \| +\d+ \|   child_b$"));
        var p = Array.FindIndex(lines, l => Regex.IsMatch(l, @"^ +\d+ \| +\d+ \| parent$"));
        Assert.True(a >= 0 && b > a && p > b, result.Stdout);
        Assert.Contains(lines, l => Regex.IsMatch(l, @"\| pyprobe_missing_module \(not found\)$"));
        Assert.Contains("4 modules loaded (1 not found); slowest:", result.Stdout);
        Assert.Contains(lines, l => l.EndsWith("child_a (imported by parent)", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.13")]
    [InlineData("3.14")]
    [InlineData("3.15")]
    public void AuditDecodesOpenPathAndSimpleArguments(string version)
    {
        using var workload = new Workload(CachedPythons.Get(version));
        var result = workload.Trace("audit", "--event", "open", "--event", "pyprobe.*", "--format", "json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = JsonLines(result.Stdout);
        var events = lines.Where(l => l.TryGetProperty("event", out _)).ToList();
        var open = Assert.Single(events, e => e.GetProperty("event").GetString() == "open" && e.GetProperty("args")[0].GetProperty("type").GetString() == "str"
            && e.GetProperty("args")[0].GetProperty("value").GetString() == workload.AuditPath);
        Assert.Equal("w", open.GetProperty("args")[1].GetProperty("value").GetString());
        Assert.Equal("int", open.GetProperty("args")[2].GetProperty("type").GetString());
        var x = Assert.Single(events, e => e.GetProperty("event").GetString() == "pyprobe.x");
        Assert.Equal(4, x.GetProperty("nargs").GetInt32());
        Assert.Equal("""[{"type":"int","value":42},{"type":"bytes","value":"ab","hex":"6162","size":2},{"type":"None"},{"type":"tuple","size":2,"items":[{"type":"str","value":"t","length":1},{"type":"int","value":1}]}]""",
            x.GetProperty("args").GetRawText());
        Assert.All(events, e => Assert.True(e.GetProperty("event").GetString() == "open" || e.GetProperty("event").GetString()!.StartsWith("pyprobe.")));
        var summary = Assert.Single(lines, l => l.TryGetProperty("summary", out _));
        Assert.Equal(1, summary.GetProperty("counts").GetProperty("pyprobe.x").GetInt32());
        Assert.Equal(events.Count(e => e.GetProperty("event").GetString() == "open"), summary.GetProperty("counts").GetProperty("open").GetInt32());
    }

    [Fact]
    public void AuditTextShowsReprAndCounts()
    {
        using var workload = new Workload(CachedPythons.Get("3.11"));
        var result = workload.Trace("audit", "--event", "open", "--event", "pyprobe.x");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, $@"^\d\d:\d\d:\d\d open\('{Regex.Escape(workload.AuditPath)}', 'w', \d+\)$"));
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d pyprobe\.x\(42, b'ab', None, \('t', 1\)\)$"));
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, @"^ +1  pyprobe\.x$"));
        var opens = result.StdoutLines.Count(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d open\("));
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, $@"^ +{opens}  open$"));
        Assert.DoesNotContain(result.StdoutLines, l => l.Contains("gc.") || l.Contains("import("));
    }

    [Fact]
    public void AuditDecodesMoreKindsThroughCommandTarget()
    {
        var python = CachedPythons.Get("3.13");
        var script = "import sys\nsys.audit('pyprobe.y', -5, 2**40, 'é', [1, 'a'], 9)\nsys.audit('pyprobe.z', 2**70, 1.5, True, 'x' * 300)\n";
        var result = PyprobeBinary.Run(["audit", "--event", "pyprobe.*", "--", .. python.Command("-c", script)]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.StdoutLines, l => l.EndsWith(" pyprobe.y(-5, 1099511627776, 'é', [1, 'a'], ...)", StringComparison.Ordinal));
        Assert.Contains(result.StdoutLines, l => l.EndsWith($" pyprobe.z(<int of 3 digits>, 1.5, True, '{new string('x', 256)}'...)", StringComparison.Ordinal));
    }

    [Fact]
    public void CommandExitCodePassesThrough()
    {
        var python = CachedPythons.Get("3.9");
        foreach (var command in new[] { "gc", "imports", "audit" })
        {
            var result = PyprobeBinary.Run([command, "--", .. python.Command("-c", "import sys; sys.exit(3)")]);
            Assert.True(result.ExitCode == 3, $"{command}: {result}");
            Assert.Contains("Attached", result.Stderr);
        }
    }

    [Fact]
    public void BadInputGivesOneLineAndNonZeroExit()
    {
        var python = CachedPythons.Get("3.9");
        var pyenv = CachedPythons.Pyenv().First(p => p.Contains("3.11"));
        using var sleeper = RunningProcess.Start("sleep", "30");
        (string[] Args, int Exit, string Text)[] cases =
        [
            (["gc"], 2, "no target"),
            (["gc", "-p", "99999999"], 1, "no process with PID 99999999"),
            (["gc", "--duration", "0", "--", python.BinaryPath], 2, "--duration must be positive"),
            (["imports", "-p", sleeper.Pid.ToString()], 1, "is not a Python interpreter"),
            (["imports", "--top", "0", "-p", "1"], 2, "--top must be positive"),
            (["gc", "--tid", "abc", "-p", "1"], 2, "abc"),
            (["audit", "--", pyenv, "-c", "pass"], 1, "built without --with-dtrace"),
            (["audit", "--format", "xml", "-p", "1"], 2, "invalid format 'xml'"),
            (["audit", "-p", "1", "--all"], 2, "only one kind of target"),
            (["stat", "--interval", "0"], 2, "--interval must be positive"),
            (["stat", "-p", "99999999"], 1, "no process with PID 99999999"),
            (["stat", "--duration", "-1"], 2, "--duration must be positive"),
        ];
        foreach (var (args, exit, text) in cases)
        {
            var result = PyprobeBinary.Run(args);
            Assert.True(result.ExitCode == exit, $"{string.Join(' ', args)}: {result}");
            var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("pyprobe: ", line);
            Assert.Contains(text, line);
        }
    }
}
