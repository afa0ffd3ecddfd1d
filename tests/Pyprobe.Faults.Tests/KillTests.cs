using Pyprobe.Faults.Tests.Support;
using Pyprobe.Usdt;
using Pyprobe.Python.Processes;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// SIGKILL in the middle of a trace, of the target and of pyprobe itself. Afterwards no program, map or
/// link pyprobe held is left in the kernel, no uprobe_multi link filters on the target's pid, tracefs
/// has no uprobe of ours, and every USDT semaphore of the surviving processes is back at 0.
/// </summary>
public class KillTests
{
    // Probes whose semaphores matter: function__entry on 3.9/3.15; on 3.11 the entry gate also holds `line`.
    private static readonly string[] Probes = ["function__entry", "function__return", "gc__start", "audit"];
    private const string Busy = "import gc\ndef spin(i):\n    return i\n";
    private const string BusyLoop = "while True:\n    for i in range(1000):\n        spin(i)\n    gc.collect(0)\n";

    public static TheoryData<string, string?> Cases => new()
    {
        { "3.9", null },
        { "3.11", null },
        { "3.9", "1" },   // PYPROBE_FORCE_PERF_EVENT: perf-event uprobes
        { "3.15", null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void PyprobeKilledMidTraceLeavesNothingAttachedAndSemaphoresAtZero(string version, string? forcePerfEvent)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        using var workload = new PythonWorkload(python.Command(), Busy, BusyLoop);
        var process = PythonProcessResolver.Resolve(workload.Pid);
        Assert.All(TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary), s => Assert.Equal(0, s.Value));
        workload.Go();

        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-kill-{Guid.NewGuid():N}");
        try
        {
            // --no-write: the USDT path with its semaphores (3.11's entry gate) is what this test checks; the eval-frame
            // hook a killed pyprobe leaves set is the README's subject.
            using var trace = TraceProcess.Start(["trace", .. Probes, "--format", "json", "-o", output, "-p", workload.Pid.ToString(), "--no-write"],
                new Dictionary<string, string?> { ["PYPROBE_FORCE_PERF_EVENT"] = forcePerfEvent });
            Assert.Contains(forcePerfEvent is null ? "via uprobe_multi" : "via perf-event uprobes", trace.AttachedLine);
            var held = BpfObjects.HeldBy(trace.Pid);
            Assert.Contains(held, h => h.Kind == BpfObjectKind.Link);
            Assert.Contains(held, h => h.Kind == BpfObjectKind.Map);
            // Programs are held by their links: add them by the links' program ids.
            var programs = held.Where(h => h.Kind == BpfObjectKind.Link).Select(h => BpfObjects.Info(h.Kind, h.Id)!.ProgramId).Distinct().ToList();
            // pyprobe's own: event programs (py_) and, since -p follows a process into a new program, the follower's (pp_).
            Assert.All(programs, id => Assert.Matches("^(py|pp)_", BpfObjects.Info(BpfObjectKind.Program, id)!.Name));
            var everything = held.Concat(programs.Select(id => (BpfObjectKind.Program, id))).ToList();

            var raised = TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary);
            foreach (var probe in Probes.Where(p => raised.ContainsKey(p))) Assert.True(raised[probe] >= 1, $"{probe} semaphore {raised[probe]} while attached");
            if (version == "3.11") Assert.Equal(1, raised["line"]); // the entry gate
            Assert.True(Posix.WaitFor(() => new FileInfo(output).Length > 0, TimeSpan.FromSeconds(10)), "no events while attached");

            trace.Signal(Posix.SigKill);
            trace.Finish(TimeSpan.FromSeconds(10));

            Assert.Empty(BpfObjects.WaitUntilGone(everything, TimeSpan.FromSeconds(10)));
            Assert.Empty(BpfObjects.UprobeMultiLinksFor(workload.Pid));
            Assert.Empty(BpfObjects.TracefsUprobeEvents(process.HostPath));
            Assert.True(Posix.WaitFor(() => TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary).Values.All(v => v == 0), TimeSpan.FromSeconds(5)),
                "semaphores after pyprobe was killed: " + string.Join(", ", TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary)));
            Assert.True(Posix.IsAlive(workload.Pid), "the target died with pyprobe");
        }
        finally
        {
            File.Delete(output);
            workload.Kill();
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("1")]
    public void TargetKilledMidTraceEndsTheTraceAndLeavesNothingAttached(string? forcePerfEvent)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Command(), Busy, BusyLoop);
        // A bystander running the same binary: the uprobes are per inode, its semaphores must stay 0 throughout.
        using var bystander = new PythonWorkload(python.Command(), Busy, "pass");
        var process = PythonProcessResolver.Resolve(workload.Pid);
        workload.Go();

        using var trace = TraceProcess.Start(["trace", .. Probes, "--format", "json", "-o", "/dev/null", "-p", workload.Pid.ToString()],
            new Dictionary<string, string?> { ["PYPROBE_FORCE_PERF_EVENT"] = forcePerfEvent });
        var held = BpfObjects.HeldBy(trace.Pid);
        var programs = held.Where(h => h.Kind == BpfObjectKind.Link).Select(h => (Kind: BpfObjectKind.Program, Id: BpfObjects.Info(h.Kind, h.Id)!.ProgramId)).Distinct();
        var everything = held.Concat(programs).ToList();
        Assert.Contains(everything, h => h.Kind == BpfObjectKind.Program);
        Assert.All(TargetMemory.ReadSemaphores(bystander.Pid, process.HostPath, process.UsdtBinary), s => Assert.Equal(0, s.Value));
        Thread.Sleep(300);

        Posix.Kill(workload.Pid, Posix.SigKill);
        var result = trace.Finish(TimeSpan.FromSeconds(10));
        Assert.True(result.ExitCode == 0, result.ToString());
        // Two busy interpreters on two CPUs leave pyprobe's reader behind at times before it raises its priority: what it
        // could not keep is counted and said (seen: 1,787 and 5,602 of ~235k, 2 runs in 12), never silent.
        var detached = System.Text.RegularExpressions.Regex.Match(result.Stderr, @"Detached after [0-9.]+ s: [1-9][0-9]* events delivered, ([0-9]+) lost");
        Assert.True(detached.Success, result.Stderr);
        if (detached.Groups[1].Value != "0") Assert.Contains($"pyprobe: warning: {detached.Groups[1].Value} events were lost because the ring buffer was full", result.Stderr);

        Assert.Empty(BpfObjects.WaitUntilGone(everything, TimeSpan.FromSeconds(10)));
        Assert.Empty(BpfObjects.UprobeMultiLinksFor(workload.Pid));
        Assert.Empty(BpfObjects.TracefsUprobeEvents(process.HostPath));
        Assert.All(TargetMemory.ReadSemaphores(bystander.Pid, process.HostPath, process.UsdtBinary), s => Assert.Equal(0, s.Value));
    }
}
