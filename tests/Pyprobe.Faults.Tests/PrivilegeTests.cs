using Pyprobe.Faults.Tests.Support;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// Missing privileges and a missing kernel feature (simulated with PYPROBE_FORCE_PERF_EVENT=1, the
/// perf-event fallback a kernel without uprobe_multi takes): a clear one-line message and exit 1 where
/// it cannot work; exact counts where it can. uid 65534 cannot read /root, so these run the system
/// /usr/bin/python3.11 (Debian's, with probes).
/// </summary>
public class PrivilegeTests
{
    private const string Python = "/usr/bin/python3.11";
    // Seven gen-1 collections between two audit markers (automatic GC off; exit collects generation 2).
    private const string Script = "import gc, sys\ngc.disable()\nsys.audit('pyprobe.begin')\nfor _ in range(7):\n    gc.collect(1)\nsys.audit('pyprobe.end')\n";
    private static readonly string[] Trace = ["trace", "gc__start", "audit", "--format", "json", "--", Python, "-c", Script];

    private static CliResult RunAs(string[] setpriv, string[] args, string? forcePerfEvent = null)
    {
        Requirements.EnsureRoot();
        if (!File.Exists(Python)) Assert.Fail($"{Python} is missing: apt-get install python3.11 (Debian bookworm's python3)");
        var program = Requirements.EnsureProgram("setpriv", "util-linux");
        PyprobeBinary.EnsureBuilt();
        return PyprobeBinary.Run([.. setpriv, PyprobeBinary.Path, .. args], new Dictionary<string, string?> { ["PYPROBE_FORCE_PERF_EVENT"] = forcePerfEvent }, program: program);
    }

    private static readonly string[] Nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    private static readonly string[] NoCapabilities = [.. Nobody, "--inh-caps=-all"];
    private static readonly string[] BpfAndPerfmon = [.. Nobody, "--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"];
    // uid 0 without CAP_SYS_ADMIN: the bounding set keeps exec from granting root its full set.
    private static readonly string[] RootWithBpfAndPerfmon = ["--bounding-set=-all,+bpf,+perfmon", "--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"];

    private static void AssertSevenCollections(CliResult result, string via)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"via {via}", result.Stderr);
        var events = new TraceOutput(result.Stdout).Events;
        var begin = events.ToList().FindIndex(e => e.GetProperty("probe").GetString() == "audit" && e.GetProperty("event").GetString() == "pyprobe.begin");
        var end = events.ToList().FindIndex(e => e.GetProperty("probe").GetString() == "audit" && e.GetProperty("event").GetString() == "pyprobe.end");
        Assert.True(begin >= 0 && end > begin, result.ToString());
        var measured = events.Skip(begin + 1).Take(end - begin - 1).ToList();
        Assert.Equal(7, measured.Count(e => e.GetProperty("probe").GetString() == "gc__start" && e.GetProperty("generation").GetInt32() == 1));
        Assert.Contains(", 0 lost", result.Stderr);
    }

    [Fact]
    public void WithoutCapabilitiesTraceIsRefusedWithOneLine()
    {
        var result = RunAs(NoCapabilities, Trace);
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.StderrLines);
        Assert.Equal("pyprobe: pyprobe trace loads BPF programs and needs root (or the CAP_BPF and CAP_PERFMON capabilities); run it with sudo", line);
        Assert.Empty(result.Stdout);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BpfAndPerfmonAloneAreEnoughForUprobeMulti(bool keepRootUid)
    {
        var result = RunAs(keepRootUid ? RootWithBpfAndPerfmon : BpfAndPerfmon, Trace);
        AssertSevenCollections(result, "uprobe_multi");
    }

    [Fact]
    public void ForcedPerfEventFallbackWorksAsRoot()
    {
        Requirements.EnsureRoot();
        var result = PyprobeBinary.Run(Trace, new Dictionary<string, string?> { ["PYPROBE_FORCE_PERF_EVENT"] = "1" });
        AssertSevenCollections(result, "perf-event uprobes");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForcedPerfEventFallbackWithoutSysAdminGivesAClearMessage(bool keepRootUid)
    {
        var result = RunAs(keepRootUid ? RootWithBpfAndPerfmon : BpfAndPerfmon, Trace, forcePerfEvent: "1");
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.StderrLines, l => l.StartsWith("pyprobe:", StringComparison.Ordinal));
        Assert.Equal("pyprobe: perf_event_open(uprobe) failed: EACCES (Permission denied): perf-event uprobes need CAP_SYS_ADMIN (root) on this kernel "
            + "(PYPROBE_FORCE_PERF_EVENT=1 chose them over uprobe_multi links, which need only CAP_BPF and CAP_PERFMON)", line);
        Assert.DoesNotContain("internal error", result.Stderr);
        Assert.DoesNotContain("Attached", result.Stderr);
        Assert.Empty(result.Stdout);
    }
}
