using System.Diagnostics;
using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `pyprobe calls -p` on _PyEval_EvalFrameDefault (pyenv builds have no USDT probes; 3.12+ through the eval-frame
/// hook): per code object (filename, qualified name, first line) the counts equal CPython's own sys.setprofile
/// "call" events on a standard-library workload — a generator's resumes in one row at its first line.
/// </summary>
public class EvalFrameCallsTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "stdlib_calls.py");

    [Theory]
    [InlineData("3.9.18")]
    [InlineData("3.12.1")]
    public void CallsPerCodeObjectEqualCPythonsProfiler(string version)
    {
        var expected = ProfilerCounts(version);
        Assert.Equal(515, expected.Single(e => e.Key.EndsWith("\tunified_diff\t1095", StringComparison.Ordinal)).Value);

        using var json = new TempFile();
        using var target = Start(version);
        Assert.Equal("ready", target.StandardOutput.ReadLine());
        var calls = Process.Start(Info(PyprobeBinary.Path, "calls", "-p", target.Id.ToString(), "--format", "json", "-o", json.Path))!;
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
            var key = $"{row.GetProperty("filename").GetString()}\t{row.GetProperty("funcname").GetString()}\t{row.GetProperty("lineno").GetInt32()}";
            counted[key] = counted.GetValueOrDefault(key) + row.GetProperty("count").GetInt64();
        }
        var differing = expected.Where(e => counted.GetValueOrDefault(e.Key) != e.Value).Select(e => $"{e.Key}: {e.Value} vs {counted.GetValueOrDefault(e.Key)}").ToList();
        Assert.True(differing.Count == 0, string.Join('\n', differing));
        Assert.InRange(expected.Count, 50, 70);
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
        var minor = string.Join('.', version.Split('.').Take(2));
        var binary = $"/root/.pyenv/versions/{version}/bin/python{minor}";
        if (!File.Exists(binary)) Assert.Fail($"{binary} is missing: install CPython {version} with pyenv");
        return Process.Start(Info(binary, [Workload, .. args]))!;
    }

    private static ProcessStartInfo Info(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, long>))]
internal sealed partial class CountsJson : System.Text.Json.Serialization.JsonSerializerContext;
