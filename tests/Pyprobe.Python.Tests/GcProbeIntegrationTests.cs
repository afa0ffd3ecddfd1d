using Pyprobe.Bpf.Links;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt;
using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Tests;

/// <summary>
/// The whole path on the real kernel and a real CPython: generated program, uprobe_multi or
/// perf-event attach, semaphore managed by the kernel, events through the ring buffer.
/// </summary>
public class GcProbeIntegrationTests
{
    private const string Python311 = "/usr/bin/python3.11";
    private const string SevenCollections = "import gc\ngc.disable()\nfor generation in (0, 1, 2, 0, 2, 1, 0):\n    gc.collect(generation)\n";

    [Theory]
    [InlineData(UprobeAttachMode.UprobeMulti)]
    [InlineData(UprobeAttachMode.PerfEvent)]
    public void GcStartEventsCarryTheGenerationAndTheSemaphoreFollowsTheLink(UprobeAttachMode mode)
    {
        Requirements.EnsureRoot();
        Requirements.EnsureFile(Python311);
        using var workload = new PythonWorkload(Python311, SevenCollections);
        var resolved = PythonProcessResolver.Resolve(workload.Pid);
        var site = resolved.UsdtBinary.FindProbe("python", "gc__start")!.Sites.Single();
        Assert.Equal(0, TargetMemory.ReadSemaphore(workload.Pid, resolved.HostPath, site));
        var fdsBefore = KernelObjectFds.Settled();

        var generations = new List<long>();
        var pids = new List<int>();
        var target = new TraceTarget(resolved.HostPath, resolved.DisplayPath, resolved.UsdtBinary, [workload.Pid], null);
        using (var session = TraceSession.Attach([target], [PythonProbeCatalog.Find("gc__start")!], new TraceSessionOptions(1 << 16, mode)))
        {
            Assert.Equal(mode, session.AttachMode);
            Assert.Equal(1, TargetMemory.ReadSemaphore(workload.Pid, resolved.HostPath, site));
            workload.RunMeasuredPart(TimeSpan.FromSeconds(20));
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (generations.Count < 7 && DateTime.UtcNow < deadline)
            {
                session.Reader.WaitForData(100);
                session.Reader.Drain(record =>
                {
                    var e = session.Decode(record);
                    Assert.Equal("gc__start", e.Name);
                    generations.Add(e.Value(0));
                    pids.Add(e.Pid);
                });
            }
            Assert.Equal(0UL, session.Lost);
            Assert.Equal(7UL, session.Hits);
        }

        Assert.Equal(new long[] { 0, 1, 2, 0, 2, 1, 0 }, generations);
        Assert.All(pids, pid => Assert.Equal(workload.Pid, pid));
        Assert.Equal(0, TargetMemory.ReadSemaphore(workload.Pid, resolved.HostPath, site));
        Assert.Equal(fdsBefore, KernelObjectFds.List());
    }
}
