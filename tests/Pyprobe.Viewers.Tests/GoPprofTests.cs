using System.Diagnostics;
using System.Text.RegularExpressions;
using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Viewers.Tests.Support;

namespace Pyprobe.Viewers.Tests;

/// <summary>
/// pprof's own reader (<c>go tool pprof</c>, Debian's golang-go, installed by scripts/install-prerequisites.sh)
/// reads our pprof files: a missing go fails under CI=true and is reported otherwise.
/// </summary>
public sealed partial class GoPprofTests
{
    [Fact]
    public void Go_pprof_top_lists_the_functions_with_their_flat_sample_counts()
    {
        if (RequiredTool.Find("go", "golang-go", "/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go") is not { } go)
            return;
        string dir = Directory.CreateTempSubdirectory("pyprobe-pprof-").FullName;
        try
        {
            string file = Path.Combine(dir, "profile.pb.gz");
            File.WriteAllBytes(file, KnownProfiles.Write(new PprofWriter(), KnownProfiles.Simple()));
            string top = Run(go, dir, "tool", "pprof", "-top", "-sample_index=samples", "-nodecount=100", file);

            // flat counts per function (pprof -top aggregates by function): work 50+20+1, Helper.run 5+25, main 3, unknown 2.
            var flat = TopLine().Matches(top).ToDictionary(m => m.Groups["name"].Value.Trim(), m => long.Parse(m.Groups["flat"].Value));
            Assert.Equal(71, flat["work"]);
            Assert.Equal(30, flat["Helper.run"]);
            Assert.Equal(3, flat["main"]);
            Assert.Equal(2, flat["\u2039unknown [code object freed]\u203a"]);
            Assert.Equal(0, flat["\u2039module\u203a"]);
            Assert.Equal(0, flat["\u2039truncated\u203a"]);
            Assert.Equal(6, flat.Count);
            Assert.Contains("Type: samples", top);

            string cpu = Run(go, dir, "tool", "pprof", "-top", "-unit=ms", "-nodecount=100", file);
            Assert.Contains("Type: cpu", cpu);
            Assert.Matches(@"(?m)^\s*710ms\s.*\swork$", cpu);

            // Thread roots keep their name and id; cumulative counts per thread.
            File.WriteAllBytes(file, KnownProfiles.Write(new PprofWriter(), KnownProfiles.Threads()));
            string threads = Run(go, dir, "tool", "pprof", "-top", "-sample_index=samples", "-nodecount=100", file);
            Assert.Matches(@"(?m)^\s*0\s+0%\s+[\d.]+%\s+40\s+85\.11%\s+thread 4242 \[MainThread\]$", threads);
            Assert.Matches(@"(?m)^\s*0\s+0%\s+[\d.]+%\s+7\s+14\.89%\s+thread 4250 \[worker-1\]$", threads);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // "      50 47.17% 47.17%         50 47.17%  work"
    [GeneratedRegex(@"(?m)^\s*(?<flat>\d+)\s+[\d.]+%\s+[\d.]+%\s+\d+\s+[\d.]+%\s+(?<name>.+)$")]
    private static partial Regex TopLine();

    private static string Run(string exe, string dir, params string[] args)
    {
        var start = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        foreach (string a in args)
            start.ArgumentList.Add(a);
        // go wants a writable cache and home even for `go tool`.
        start.Environment["GOCACHE"] = Path.Combine(dir, "gocache");
        start.Environment["HOME"] = dir;
        start.Environment["GOFLAGS"] = "-mod=mod";
        start.Environment["GOTOOLCHAIN"] = "local";
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(120_000), "go tool pprof did not finish in 120 s");
        Assert.True(process.ExitCode == 0, $"go tool pprof exited {process.ExitCode}: {stderr.Result}");
        return stdout + stderr.Result;
    }
}
