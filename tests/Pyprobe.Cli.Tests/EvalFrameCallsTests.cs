using System.Diagnostics;
using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `pyprobe calls -p` keys a function by its code object on every source — _PyEval_EvalFrameDefault on pyenv builds
/// (no USDT probes; 3.12+ through the eval-frame hook), the USDT probes on Debian's 3.9, 3.11 and 3.15 (the entry reads the
/// entered frame's code object): per (filename, qualified name, first line) the counts equal CPython's own
/// sys.setprofile "call" events on a standard-library workload — a generator's resumes in one row at its first line.
/// A two-part version is a Debian build from the interpreter cache, a three-part one a pyenv build. On 3.13 the
/// <c>__init__</c> of specialised class calls, which CALL_ALLOC_AND_ENTER_INIT runs without the hook seeing it, counts too.
/// </summary>
public class EvalFrameCallsTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "stdlib_calls.py");

    [Theory]
    [InlineData("3.8.18")]
    [InlineData("3.9.18")]
    [InlineData("3.10.13")]
    [InlineData("3.11.7")]
    [InlineData("3.12.1")]
    [InlineData("3.13.0")]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.13")]
    [InlineData("3.14")]
    [InlineData("3.15")]
    public void CallsPerCodeObjectEqualCPythonsProfiler(string version)
    {
        var (expected, differing) = Compare(version);
        Assert.True(differing.Count == 0, string.Join('\n', differing.Select(d => $"{d.Key}: {d.Expected} vs {d.Counted}")));
        Assert.InRange(expected.Count, 50, 300); // 3.15 runs more of re and json in Python
    }

    /// <summary>
    /// `calls --count` takes one probe a call and no time, and still counts what the profiler counts: from
    /// _PyEval_EvalFrameDefault at its entry alone (no uprobe on its rets; a generator's creation is not a call), keyed
    /// by code object as above; from USDT (Debian's 3.9, 3.11 without its entry gate, 3.15) at function__return alone,
    /// which names a function but not its first line, so rows are compared per (file, name).
    /// </summary>
    [Theory]
    [InlineData("3.8.18")]
    [InlineData("3.11.7")]
    [InlineData("3.12.1")]
    [InlineData("3.13.0")]
    [InlineData("3.13")]
    [InlineData("3.14")]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void CountsAloneEqualCPythonsProfiler(string version)
    {
        var usdt = version is "3.9" or "3.11" or "3.15";
        // USDT rows: the return's own name (co_name, the qualified name's last part) and no first line.
        static string ByName(string key)
        {
            var parts = key.Split('\t');
            return $"{parts[0]}\t{parts[1][(parts[1].LastIndexOf('.') + 1)..]}";
        }
        var (expected, differing, attached) = Compare(version, ["--count"], usdt ? ByName : null);
        Assert.True(differing.Count == 0, string.Join('\n', differing.Select(d => $"{d.Key}: {d.Expected} vs {d.Counted}")));
        Assert.InRange(expected.Count, 30, 300);
        Assert.StartsWith(usdt ? "Attached function__return to" : "Attached function__entry to", attached);
        // No ret is probed, so no return's cost is quoted.
        Assert.DoesNotContain("per return", attached);
    }

    private static (Dictionary<string, long> Expected, List<(string Key, long Expected, long Counted)> Differing) Compare(string version)
    {
        var (expected, differing, _) = Compare(version, [], null);
        return (expected, differing);
    }

    /// <param name="keyOf">How a profiler key (file, qualified name, first line) is compared, or null for as it is.</param>
    private static (Dictionary<string, long> Expected, List<(string Key, long Expected, long Counted)> Differing, string Attached) Compare(
        string version, string[] options, Func<string, string>? keyOf)
    {
        var expected = ProfilerCounts(version);
        // One generator, 515 activations (its call and every resume); 3.9.2's difflib has it at line 1135, later ones at 1095.
        Assert.Equal(515, expected.Single(e => e.Key.Contains("\tunified_diff\t", StringComparison.Ordinal)).Value);
        if (keyOf is not null) expected = expected.GroupBy(e => keyOf(e.Key)).ToDictionary(g => g.Key, g => g.Sum(e => e.Value));

        using var json = new TempFile();
        using var target = Start(version);
        Assert.Equal("ready", target.StandardOutput.ReadLine());
        var calls = Process.Start(Info(PyprobeBinary.Path, ["calls", "-p", target.Id.ToString(), "--format", "json", "-o", json.Path, .. options]))!;
        string? line;
        while ((line = calls.StandardError.ReadLine()) is not null && !line.StartsWith("Attached", StringComparison.Ordinal)) { }
        Assert.True(line is not null, "pyprobe did not attach");
        target.StandardInput.WriteLine("go");
        target.StandardInput.Flush();
        Assert.StartsWith("done", target.StandardOutput.ReadLine());
        Process.Start("kill", ["-INT", calls.Id.ToString()])!.WaitForExit();
        Assert.True(calls.WaitForExit(TimeSpan.FromSeconds(60)), "pyprobe did not stop");
        Assert.Equal(0, calls.ExitCode);
        target.StandardInput.WriteLine("exit");
        target.StandardInput.Flush();

        var counted = new Dictionary<string, long>();
        foreach (var row in JsonDocument.Parse(File.ReadAllText(json.Path)).RootElement.EnumerateArray())
        {
            if (options.Contains("--count")) Assert.False(row.TryGetProperty("total_ns", out _), row.ToString());
            var lineno = row.GetProperty("lineno");
            var key = $"{row.GetProperty("filename").GetString()}\t{row.GetProperty("funcname").GetString()}";
            if (keyOf is null) key += $"\t{lineno.GetInt32()}";
            else Assert.Equal(JsonValueKind.Null, lineno.ValueKind);
            counted[key] = counted.GetValueOrDefault(key) + row.GetProperty("count").GetInt64();
        }
        return (expected, expected.Where(e => counted.GetValueOrDefault(e.Key) != e.Value).Select(e => (e.Key, e.Value, counted.GetValueOrDefault(e.Key))).ToList(), line!);
    }

    /// <summary>
    /// `calls --all BINARY` on a Debian build with USDT probes and a workload started after pyprobe: its rows are keyed by
    /// code object too (on 3.15 the entry finds its thread state through the binary's fixed TLS offset; before, such a
    /// process fell back to the probe's line: module code at 0, each generator resume a row of its own). --interval
    /// keeps the import phase apart: only the intervals that began after the workload was ready are counted.
    /// </summary>
    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void CallsAllOnAProcessStartedLaterEqualCPythonsProfiler(string version)
    {
        var expected = ProfilerCounts(version);
        var lines = new System.Collections.Concurrent.BlockingCollection<string>();
        using var calls = Process.Start(Info(PyprobeBinary.Path, "calls", "--all", CachedPythons.Get(version).BinaryPath, "--interval", "1", "--format", "json"))!;
        string? line;
        while ((line = calls.StandardError.ReadLine()) is not null && !line.StartsWith("Attached", StringComparison.Ordinal)) { }
        Assert.True(line is not null, "pyprobe did not attach");
        var reader = new Thread(() =>
        {
            string? l;
            while ((l = calls.StandardOutput.ReadLine()) is not null) lines.Add(l);
            lines.CompleteAdding();
        }) { IsBackground = true };
        reader.Start();
        using var target = Start(version);
        try
        {
            Assert.Equal("ready", target.StandardOutput.ReadLine());
            // Two interval lines after "ready": the imports are in intervals that have been printed.
            for (var i = 0; i < 2; i++) Assert.True(lines.TryTake(out _, TimeSpan.FromSeconds(10)), "no interval printed");
            target.StandardInput.WriteLine("go");
            target.StandardInput.Flush();
            Assert.StartsWith("done", target.StandardOutput.ReadLine());
            var measured = new List<string>();
            for (var i = 0; i < 2; i++)
            {
                Assert.True(lines.TryTake(out var interval, TimeSpan.FromSeconds(10)), "no interval printed");
                measured.Add(interval!);
            }
            Process.Start("kill", ["-INT", calls.Id.ToString()])!.WaitForExit();
            Assert.True(calls.WaitForExit(TimeSpan.FromSeconds(60)), "pyprobe did not stop");
            reader.Join(TimeSpan.FromSeconds(10));
            Assert.Equal(0, calls.ExitCode);
            measured.AddRange(lines);

            var counted = new Dictionary<string, long>();
            foreach (var interval in measured)
                foreach (var row in JsonDocument.Parse(interval).RootElement.EnumerateArray())
                {
                    if (row.GetProperty("pid").GetInt32() != target.Id) continue;
                    var key = $"{row.GetProperty("filename").GetString()}\t{row.GetProperty("funcname").GetString()}\t{row.GetProperty("lineno").GetInt32()}";
                    counted[key] = counted.GetValueOrDefault(key) + row.GetProperty("count").GetInt64();
                }
            var differing = expected.Where(e => counted.GetValueOrDefault(e.Key) != e.Value).Select(e => $"{e.Key}: {e.Value} vs {counted.GetValueOrDefault(e.Key)}").ToList();
            Assert.True(differing.Count == 0, string.Join('\n', differing));
            Assert.InRange(expected.Count, 50, 300);
        }
        finally
        {
            target.StandardInput.WriteLine("exit");
            target.StandardInput.Flush();
            if (!calls.HasExited) calls.Kill();
        }
    }

    /// <summary>The workload's sys.setprofile "call" counts per code object, from a run of its own.</summary>
    private static Dictionary<string, long> ProfilerCounts(string version)
    {
        using var process = Start(version, "profile");
        Assert.Equal("ready", process.StandardOutput.ReadLine());
        process.StandardInput.WriteLine("go");
        process.StandardInput.Flush();
        Assert.StartsWith("done", process.StandardOutput.ReadLine());
        var counts = JsonSerializer.Deserialize(process.StandardOutput.ReadLine()!, CountsJson.Default.DictionaryStringInt64)!;
        process.StandardInput.WriteLine("exit");
        process.StandardInput.Flush();
        process.WaitForExit(10_000);
        return counts;
    }

    private static Process Start(string version, params string[] args)
    {
        if (version.Split('.').Length == 2) return Process.Start(Info(CachedPythons.Get(version).LauncherPath, [Workload, .. args]))!;
        var minor = string.Join('.', version.Split('.').Take(2));
        var binary = $"/root/.pyenv/versions/{version}/bin/python{minor}";
        if (!File.Exists(binary)) Assert.Fail($"{binary} is missing: install CPython {version} with pyenv");
        return Process.Start(Info(binary, [Workload, .. args]))!;
    }

    private static ProcessStartInfo Info(string file, params IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, long>))]
internal sealed partial class CountsJson : System.Text.Json.Serialization.JsonSerializerContext;
