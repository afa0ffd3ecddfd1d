using System.Diagnostics;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Links;
using Pyprobe.Faults.Tests.Support;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt;
using Pyprobe.Python.Processes;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// Attach and detach over and over on one live target, in process: afterwards this process holds
/// the same kernel-object fds as before, managed and native memory have not grown, every BPF program,
/// map and link any session created is gone from the kernel, and the target's semaphores are 0.
/// </summary>
public class AttachCycleTests
{
    /// <summary>
    /// Closing a uprobe link waits for the kernel's uprobe SRCU grace period (about 40 ms per link on
    /// 6.18), so one cycle with one probe costs about 45 ms: 1000 cycles of gc__start by default;
    /// PYPROBE_TORTURE_LONG=1 adds function__entry (with the 3.11 entry gate, a second program and
    /// link) and audit, about 4x slower.
    /// </summary>
    private static bool Long => Environment.GetEnvironmentVariable("PYPROBE_TORTURE_LONG") == "1";
    private const int Cycles = 1000;

    [Fact]
    public void ThousandAttachDetachCyclesLeakNoFdsMemoryOrKernelObjects()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.11");
        using var workload = new PythonWorkload(python.Command(), "import gc\ndef f():\n    pass\n", "pass");
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        var process = PythonProcessResolver.Resolve(workload.Pid);
        PythonProbe[] probes = Long
            ? [PythonProbeCatalog.Find("gc__start")!, PythonProbeCatalog.Find("function__entry")!, PythonProbeCatalog.Find("audit")!]
            : [PythonProbeCatalog.Find("gc__start")!];
        var options = new TraceSessionOptions(RingBufferBytes: 1 << 16, AllowHookWrite: false);

        UprobeAttachMode? mode = null;
        void Cycle(HashSet<(BpfObjectKind, uint)>? seen)
        {
            using var session = TraceSession.Attach(targets, probes, options);
            mode = session.AttachMode;
            Assert.Equal(Long ? 1 : 0, session.GatedTargets.Count);
            if (seen is null) return;
            var held = BpfObjects.HeldBy(Environment.ProcessId);
            foreach (var h in held) seen.Add(h);
            foreach (var link in held.Where(h => h.Kind == BpfObjectKind.Link)) seen.Add((BpfObjectKind.Program, BpfObjects.Info(link.Kind, link.Id)!.ProgramId));
        }

        // Warm up: JIT, lazy statics, kernel feature probes.
        for (var i = 0; i < 20; i++) Cycle(new HashSet<(BpfObjectKind, uint)>());
        var fdsBefore = KernelObjectFds.List();
        var managedBefore = ManagedBytes();
        var nativeBefore = NativeAnonymousKilobytes();
        var ours = new HashSet<(BpfObjectKind, uint)>();

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Cycles; i++) Cycle(i % 10 == 0 ? ours : null);
        clock.Stop();

        var fdsAfter = KernelObjectFds.List();
        var managedGrowth = ManagedBytes() - managedBefore;
        var nativeGrowth = NativeAnonymousKilobytes() - nativeBefore;
        Assert.Equal(fdsBefore, fdsAfter);
        Assert.True(managedGrowth < 5 << 20, $"managed memory grew by {managedGrowth} bytes over {Cycles} cycles");
        Assert.True(nativeGrowth < 8 << 10, $"anonymous memory outside the managed heap grew by {nativeGrowth} KiB over {Cycles} cycles");
        // Per cycle: ring and scratch maps (and the CPU queues beside the ring, where the kernel has them), and the pid map
        // unless every link filters by process itself (uprobe_multi with the kernel's pid-filter fix); one program and one
        // link per probe (and the gate's).
        var mapsPerCycle = (mode == UprobeAttachMode.UprobeMulti && KernelFeatures.HasUprobeMultiPidFilterFix ? 2 : 3) + (KernelFeatures.HasCpuQueues ? 1 : 0);
        Assert.Equal(mapsPerCycle * Cycles / 10, ours.Count(o => o.Item1 == BpfObjectKind.Map));
        if (!Long)
        {
            Assert.Equal(Cycles / 10, ours.Count(o => o.Item1 == BpfObjectKind.Program));
            Assert.Equal(Cycles / 10, ours.Count(o => o.Item1 == BpfObjectKind.Link));
        }
        Assert.Empty(BpfObjects.WaitUntilGone(ours, TimeSpan.FromSeconds(30)));
        Assert.Empty(BpfObjects.UprobeMultiLinksFor(workload.Pid));
        Assert.All(TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary), s => Assert.Equal(0, s.Value));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(Long ? 600 : 150), $"{Cycles} cycles took {clock.Elapsed.TotalSeconds:0.0} s");
    }

    private static long ManagedBytes()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }

    /// <summary>
    /// RssAnon less what the GC has committed: native heap and anonymous mappings. (The GC keeps
    /// committed memory it may reuse, which is not a leak; the managed heap is checked on its own.)
    /// </summary>
    private static long NativeAnonymousKilobytes()
    {
        ManagedBytes();
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("RssAnon:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) - GC.GetGCMemoryInfo().TotalCommittedBytes / 1024;
    }
}
