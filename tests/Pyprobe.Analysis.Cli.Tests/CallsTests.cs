using System.Text.Json;
using Pyprobe.Cli.Tests;
using static Pyprobe.Analysis.Cli.Tests.AnalysisCli;

namespace Pyprobe.Analysis.Cli.Tests;

/// <summary>`pyprobe calls` on real interpreters: exact counts, the JSON shape, real durations, --sort/--top, intervals.</summary>
public class CallsTests
{
    private static readonly string[] TimedKeys = ["filename", "funcname", "lineno", "count", "total_ns", "mean_ns", "min_ns", "max_ns", "p50_ns", "p90_ns", "p99_ns"];

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void FibEighteenGives8361CallsWithTheDocumentedJsonShape(string version)
    {
        var (result, json) = Run(version, Fib, "calls", "--format", "json");
        var fib = Row(Rows(json), "fib");
        Assert.Equal(TimedKeys, Keys(fib));
        Assert.Equal("<string>", fib.GetProperty("filename").GetString());
        Assert.Equal(1, fib.GetProperty("lineno").GetInt32());
        Assert.Equal(8361, fib.GetProperty("count").GetInt64());
        var min = fib.GetProperty("min_ns").GetInt64();
        var p50 = fib.GetProperty("p50_ns").GetInt64();
        var p90 = fib.GetProperty("p90_ns").GetInt64();
        var p99 = fib.GetProperty("p99_ns").GetInt64();
        var max = fib.GetProperty("max_ns").GetInt64();
        Assert.True(0 < min && min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, fib.ToString());
        Assert.Equal(fib.GetProperty("total_ns").GetInt64() / 8361.0, fib.GetProperty("mean_ns").GetInt64(), 0);
        Assert.Contains("Attached function__entry, function__return", result.Stderr);
        if (version == "3.11") Assert.Contains("pyprobe turns it on", result.Stderr);
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void SleepingFunctionShowsItsTime(string version)
    {
        const string script = "import time\ndef nap():\n    time.sleep(0.05)\nfor _ in range(4):\n    nap()\n";
        var (_, json) = Run(version, script, "calls", "--format", "json", "--self");
        var nap = Row(Rows(json), "nap");
        Assert.Equal(4, nap.GetProperty("count").GetInt64());
        Assert.InRange(nap.GetProperty("mean_ns").GetInt64(), 50_000_000, 80_000_000);
        Assert.True(nap.GetProperty("min_ns").GetInt64() >= 50_000_000, nap.ToString());
        // time.sleep is C code: it is nap's own time.
        Assert.True(nap.GetProperty("self_ns").GetInt64() >= 200_000_000, nap.ToString());

        var (_, text) = Run(version, script, "calls", "--function", "nap");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^CALLS\s+TOTAL\s+MEAN\s+MIN\s+MAX\s+P50\s+P90\s+P99  FUNCTION$", lines[0]);
        Assert.Matches(@"^\s*4\s+2\d\d ms\s+[5-7]\d\.\d ms\s+[5-7]\d\.\d ms\s+[5-7]\d\.\d ms(\s+[5-7]\d\.\d ms){3}  nap \(<string>:2\)$", lines[1]);
    }

    [Fact]
    public void Python311WithoutEntryGateCountsAndSaysWhyTimesAreMissing()
    {
        var (result, json) = Run("3.11", Fib, "calls", "--format", "json", "--no-entry-gate");
        var fib = Row(Rows(json), "fib");
        Assert.Equal(["filename", "funcname", "lineno", "count"], Keys(fib));
        Assert.Equal(JsonValueKind.Null, fib.GetProperty("lineno").ValueKind);
        Assert.Equal(8361, fib.GetProperty("count").GetInt64());
        Assert.Contains("Attached function__return to", result.Stderr);
        Assert.Contains("pyprobe: note: times are missing: CPython 3.11 fires function__entry only while tracing is on and the entry gate is off", result.Stderr);

        var (_, text) = Run("3.11", Fib, "calls", "--no-entry-gate", "--function", "fib");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^\s*8361\*(\s+-){7}  fib \(<string>\)$", lines[1]);
        Assert.StartsWith("* 8361 of 8361 calls have no time: CPython 3.11 fires function__entry only while tracing is on", lines[2]);
    }

    [Fact]
    public void CountAloneIsOneColumnAndNeedsNoEntryGateOn311()
    {
        var (result, text) = Run("3.11", Fib, "calls", "--count", "--function", "fib");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["CALLS  FUNCTION", " 8361  fib (<string>)"], lines);
        Assert.Contains("Attached function__return to", result.Stderr);
        // Counting was asked for: no gate opened, nothing to excuse.
        Assert.DoesNotContain("pyprobe turns it on", result.Stderr);
        Assert.DoesNotContain("times are missing", result.Stderr);
        Assert.DoesNotContain("without times", result.Stderr);
    }

    /// <summary>
    /// Counted alone, an interval is what each count grew by: nothing is deleted between intervals, so a call made
    /// while the table is read is in the next one (with a read and a delete it would be in neither). A tight loop,
    /// a call every few microseconds, would lose some of those.
    /// </summary>
    [Fact]
    public void CountAloneIntervalsAddUpToEveryCall()
    {
        var script = TickLoop.Script(2.6, pause: null);
        var python = CachedPythons.Get("3.9");
        using var file = new TempFile();
        var result = PyprobeBinary.Run(["calls", "--count", "--interval", "0.5", "--format", "json", "--function", "tick", "-o", file.Path, "--", .. python.Command("-c", script)], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        var ticks = long.Parse(result.Stdout.Trim());
        var reports = File.ReadAllLines(file.Path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.InRange(reports.Count, 5, 7);
        var counts = reports.Select(r => r.EnumerateArray().Sum(row => row.GetProperty("count").GetInt64())).ToList();
        Assert.Equal(ticks, counts.Sum());
        Assert.True(counts.Count(c => c > 1000) >= 4, string.Join(", ", counts));
        Assert.All(reports.SelectMany(r => r.EnumerateArray()), row => Assert.False(row.TryGetProperty("total_ns", out _), row.ToString()));
    }

    [Fact]
    public void SortAndTopPickTheRightRows()
    {
        // many: 300 short sleeps (most calls, most total time); few: 2 long sleeps (largest mean and max).
        const string script =
            "import time\n" +
            "def many():\n    time.sleep(0.0005)\n" +
            "def few():\n    time.sleep(0.03)\n" +
            "for _ in range(300):\n    many()\n" +
            "few()\nfew()\n";
        string[] Order(params string[] args)
        {
            var (_, json) = Run("3.9", script, ["calls", "--format", "json", "--file", "<string>", .. args]);
            return [.. Rows(json).Select(r => r.GetProperty("funcname").GetString()!)];
        }
        Assert.Equal(["many", "few", "<module>"], Order("--sort", "count"));
        Assert.Equal(["many", "few"], Order("--sort", "count", "--top", "2"));
        Assert.Equal(["<module>", "many", "few"], Order("--sort", "total"));
        Assert.Equal(["<module>", "many", "few"], Order());
        Assert.Equal(["<module>", "few", "many"], Order("--sort", "mean"));
        Assert.Equal(["<module>", "few"], Order("--sort", "max", "--top", "2"));
        Assert.Equal(["many"], Order("--sort", "self", "--self", "--top", "1"));
    }

    [Fact]
    public void IntervalPrintsAndResetsEveryPeriod()
    {
        var script = TickLoop.Script(2.6, pause: 0.005);
        var python = CachedPythons.Get("3.9");
        using var file = new TempFile();
        var result = PyprobeBinary.Run(["calls", "--interval", "1", "--format", "json", "--function", "tick", "-o", file.Path, "--", .. python.Command("-c", script)], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        var ticks = long.Parse(result.Stdout.Trim());
        var reports = File.ReadAllLines(file.Path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.InRange(reports.Count, 3, 4);
        var counts = reports.Select(r => r.EnumerateArray().Sum(row => row.GetProperty("count").GetInt64())).ToList();
        Assert.Equal(ticks, counts.Sum());
        Assert.True(counts[1] > 50, string.Join(", ", counts));
    }

    [Fact]
    public void FunctionProbesMissingIsOneLineError()
    {
        var python = CachedPythons.Get("3.13");
        var result = PyprobeBinary.Run(["calls", "--no-write", "--", .. python.Command("-c", "pass")]);
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("pyprobe: ", line);
        Assert.Contains("removed in 3.12", line);
    }

    [Fact]
    public void BadOptionsAreUsageErrors()
    {
        (string[] Args, string Text)[] cases =
        [
            (["calls", "--sort", "bogus", "-p", "1"], "invalid --sort 'bogus'"),
            (["calls", "--top", "0", "-p", "1"], "--top must be a positive"),
            (["calls", "--interval", "-1", "-p", "1"], "--interval must be positive"),
            (["calls", "--sort", "self", "-p", "1"], "--sort self needs --self"),
            (["calls", "--count", "--self", "-p", "1"], "--self needs times, which --count does not take"),
            (["calls", "--count", "--sort", "mean", "-p", "1"], "--sort mean needs times, which --count does not take"),
            (["top", "--count", "--sample", "-p", "1"], "--sample takes samples, not counts"),
            (["top", "--count", "--sort", "self", "-p", "1"], "--sort self needs times, which --count does not take"),
            (["calls"], "no target"),
            (["flow"], "no target"),
            (["top"], "no target"),
        ];
        foreach (var (args, text) in cases)
        {
            var result = PyprobeBinary.Run(args);
            Assert.True(result.ExitCode == 2, $"{string.Join(' ', args)}: {result}");
            var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(text, line);
        }
    }
}
