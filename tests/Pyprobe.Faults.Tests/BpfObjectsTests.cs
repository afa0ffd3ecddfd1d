using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Programs;
using Pyprobe.Faults.Tests.Support;
using Pyprobe.Usdt;
using Pyprobe.Python.Processes;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// The kernel-object reader the other fault tests rely on, proved on objects this test creates: a
/// program's name, a uprobe_multi link's program, site count, pid filter and path, and that both are
/// gone from the kernel's id lists once their fds close.
/// </summary>
public class BpfObjectsTests
{
    [Fact]
    public void ReaderReadsBackAProgramAndAUprobeMultiLinkThisTestCreated()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Command(), "", "pass");
        var process = PythonProcessResolver.Resolve(workload.Pid);
        var site = process.UsdtBinary.FindProbe("python", "gc__start")!.Sites.Single();
        byte[] returnZero = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

        uint programId, linkId;
        using (var program = BpfProgram.Load(new ProgramSpec("py_faultcheck", ProgramType.Kprobe, returnZero, AttachType.TraceUprobeMulti)))
        using (var link = UprobeMultiLink.Attach(program, process.HostPath, [new UprobeSite(site.FileOffset, site.SemaphoreFileOffset)], workload.Pid))
        {
            var held = BpfObjects.HeldBy(Environment.ProcessId);
            var programs = held.Where(h => h.Kind == BpfObjectKind.Program).Select(h => BpfObjects.Info(h.Kind, h.Id)!).Where(p => p.Name == "py_faultcheck").ToList();
            programId = Assert.Single(programs).Id;
            Assert.Equal(2u, programs[0].Type); // BPF_PROG_TYPE_KPROBE
            Assert.Contains(programId, BpfObjects.Ids(BpfObjectKind.Program));

            var links = BpfObjects.UprobeMultiLinksFor(workload.Pid);
            var info = Assert.Single(links);
            linkId = info.Id;
            Assert.Equal(programId, info.ProgramId);
            Assert.Equal(1u, info.UprobeMultiCount);
            Assert.Equal(new FileInfo(process.HostPath).ResolveLinkTarget(true)?.FullName ?? Path.GetFullPath(process.HostPath), info.UprobeMultiPath);
            Assert.Contains((BpfObjectKind.Link, linkId), held);
            Assert.Equal(1, TargetMemory.ReadSemaphore(workload.Pid, process.HostPath, site.SemaphoreFileOffset));
        }
        Assert.Empty(BpfObjects.WaitUntilGone([(BpfObjectKind.Program, programId), (BpfObjectKind.Link, linkId)], TimeSpan.FromSeconds(10)));
        Assert.Empty(BpfObjects.UprobeMultiLinksFor(workload.Pid));
        Assert.Equal(0, TargetMemory.ReadSemaphore(workload.Pid, process.HostPath, site.SemaphoreFileOffset));
    }
}
