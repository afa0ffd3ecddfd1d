using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// trace --format raw on a real kernel and a real CPython: three tracers watch the same deterministic run (raw, text,
/// JSON), so they see the same events in the same order; the raw capture converted gives the text byte for byte
/// (--time none: each tracer's program reads the clock itself, so timestamps differ by nanoseconds between tracers)
/// and the JSON byte for byte once each line's "ts" is set aside.
/// </summary>
public partial class RawCaptureTraceTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "known_counts.py");
    private static readonly string[] Probes = ["function__entry", "function__return", "gc__*", "import__*", "audit"];

    [Fact]
    public void RawCaptureConvertsToTheLinesOfADirectTrace()
    {
        var python = CachedPythons.Get("3.9");
        using var raw = new TempFile();
        using var text = new TempFile();
        using var json = new TempFile();
        using var convertedText = new TempFile();
        using var convertedJson = new TempFile();
        var workload = StartWaitingWorkload(python);
        var pid = workload.Id.ToString();
        var tracers = new[]
        {
            AttachedTracer.Start(["trace", .. Probes, "-p", pid, "--format", "raw", "--time", "none", "-o", raw.Path], out _),
            AttachedTracer.Start(["trace", .. Probes, "-p", pid, "--time", "none", "-o", text.Path], out _),
            AttachedTracer.Start(["trace", .. Probes, "-p", pid, "--format", "json", "-o", json.Path], out _),
        };
        workload.StandardInput.WriteLine("go");
        workload.StandardInput.Close();
        Assert.True(workload.WaitForExit(60_000), "workload did not finish");
        var reports = tracers.Select(t => AttachedTracer.Finish(t, TimeSpan.FromSeconds(60))).ToList();
        Assert.All(reports, r => Assert.True(r.Exit == 0, r.Stderr));
        Assert.All(reports, r => Assert.Contains(" 0 lost", r.Stderr));

        var convertText = PyprobeBinary.Run("convert", raw.Path, "-o", convertedText.Path);
        Assert.True(convertText.ExitCode == 0, convertText.ToString());
        var convertJson = PyprobeBinary.Run("convert", raw.Path, "--format", "json", "-o", convertedJson.Path);
        Assert.True(convertJson.ExitCode == 0, convertJson.ToString());

        var delivered = long.Parse(Delivered().Match(reports[0].Stderr).Groups[1].Value);
        var lines = File.ReadAllLines(text.Path);
        Assert.Equal(delivered, lines.Length);
        Assert.Equal(8361, lines.Count(l => l.StartsWith("function__entry ", StringComparison.Ordinal) && l.Contains(", funcname=fib, ")));
        Assert.Equal(File.ReadAllBytes(text.Path), File.ReadAllBytes(convertedText.Path));
        Assert.Equal(Untimed(File.ReadAllText(json.Path)), Untimed(File.ReadAllText(convertedJson.Path)));
        Assert.True(new FileInfo(raw.Path).Length > 0);
    }

    /// <summary>Each line's "ts" value removed (the rest must match byte for byte).</summary>
    private static string Untimed(string jsonLines) => Timestamp().Replace(jsonLines, "{\"ts\":_,");

    [GeneratedRegex("""\{"ts":\d+,""")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@"(\d+) events delivered")]
    private static partial Regex Delivered();

    private static Process StartWaitingWorkload(CachedPython python) => WaitingWorkload.StartProcess(python.Command(Workload, "wait"));
}
