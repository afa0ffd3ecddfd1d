using System.Runtime.InteropServices;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Btf;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

public class KernelBtfTests
{
    private static readonly Lazy<KernelBtf> Vmlinux = new(KernelBtf.LoadVmlinux);

    [Fact]
    public void OffsetsAskedByDottedPathAreTheLoadedTypesOnesAndAFreedBtfAnswersNothing()
    {
        var btf = KernelBtf.LoadVmlinux();
        int[] expected = [btf.MemberOffset("task_struct", "thread", "fsbase"), btf.MemberOffset("task_struct", "pid"), btf.MemberOffset("task_struct", "tgid")];
        Assert.Equal(expected, KernelBtf.VmlinuxMemberOffsets("task_struct.thread.fsbase", "task_struct.pid", "task_struct.tgid"));
        Assert.Equal(expected[2], KernelBtf.VmlinuxMemberOffset("task_struct.tgid"));
        Assert.NotEqual(expected[1], expected[2]);
        btf.Dispose();
        Assert.Throws<ObjectDisposedException>(() => btf.MemberOffset("task_struct", "pid"));
    }

    [Fact]
    public void TheFsbaseOffsetFromBtfReadsTheThreadsFsbaseInTheKernel()
    {
        KernelRequirement.EnsureRoot();
        Assert.Equal(Architecture.X64, RuntimeInformation.ProcessArchitecture); // fsbase is x86-64's thread pointer
        var offset = Vmlinux.Value.MemberOffset("task_struct", "thread", "fsbase");
        Assert.True(offset > 0);

        using var busy = new BusyThread();
        Assert.NotEqual(0UL, busy.FsBase);
        using var result = BpfMap.Create(MapSpec.Array("t_fsbase", 8, 1));
        // On a sample of the busy thread: *(u64 *)(current + offset), read with bpf_probe_read_kernel.
        const short key = -4, value = -16;
        var code = new InstructionBuilder()
            .Call(HelperFunction.GetCurrentPidTgid)
            .JumpIf32(JumpCondition.NotEqual, Register.R0, busy.Tid, "out")
            .Call(HelperFunction.GetCurrentTask)
            .Mov64(Register.R3, Register.R0).Add64(Register.R3, offset)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, value)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadKernel)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "out")
            .StoreImm(MemorySize.Word, Register.FramePointer, key, 0)
            .LoadMapFd(Register.R1, result.Fd.Value)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, value)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit()
            .Assemble();
        using var program = BpfProgram.Load(new ProgramSpec("t_fsbase", ProgramType.PerfEvent, code.Bytecode));
        using (CpuClockSampling.Attach(program, 999))
            Thread.Sleep(500);

        var read = new byte[8];
        Assert.True(result.TryLookup(BitConverter.GetBytes(0), read));
        Assert.Equal($"0x{busy.FsBase:x}", $"0x{BitConverter.ToUInt64(read):x}");
    }

    [Fact]
    public void MembersOfAnonymousUnionsAndTypedefsResolve()
    {
        var btf = Vmlinux.Value;
        // struct list_head { next; prev; }: plain members.
        Assert.Equal(0, btf.MemberOffset("list_head", "next"));
        Assert.Equal(8, btf.MemberOffset("list_head", "prev"));
        // sk_buff.next lives in an anonymous union (of an anonymous struct) at the start of struct sk_buff, and
        // sk_buff.len is a direct member further on: the anonymous scope adds no name and no offset of its own.
        Assert.Equal(0, btf.MemberOffset("sk_buff", "next"));
        Assert.Equal(8, btf.MemberOffset("sk_buff", "prev"));
        // A path through a typedef'd member: task_struct.pid is pid_t (typedef int), thread_struct is a plain struct.
        Assert.Equal(btf.MemberOffset("task_struct", "thread") + btf.MemberOffset("thread_struct", "fsbase"),
            btf.MemberOffset("task_struct", "thread", "fsbase"));
        Assert.Equal(BtfKind.Int, btf.Resolve(btf.Composite("task_struct").Members.Single(m => m.Name == "pid").TypeId).Kind);
    }

    [Fact]
    public void MissingPiecesGiveOneLineErrors()
    {
        var btf = Vmlinux.Value;
        var noMember = Assert.Throws<BtfException>(() => btf.MemberOffset("task_struct", "thread", "no_such_field"));
        Assert.Equal("kernel BTF: task_struct.thread (struct thread_struct) has no member 'no_such_field'", noMember.Message);
        var noStruct = Assert.Throws<BtfException>(() => btf.MemberOffset("no_such_struct", "x"));
        Assert.Equal("kernel BTF has no struct or union 'no_such_struct'", noStruct.Message);
        var notStruct = Assert.Throws<BtfException>(() => btf.MemberOffset("task_struct", "pid", "x"));
        Assert.Contains("task_struct.pid is a int, not a struct or union", notStruct.Message);
        var missing = Assert.Throws<BtfException>(() => KernelBtf.Load("/nonexistent/btf/vmlinux"));
        Assert.Contains("CONFIG_DEBUG_INFO_BTF", missing.Message);
        Assert.DoesNotContain('\n', missing.Message);
        var notBtf = Assert.Throws<BtfException>(() => KernelBtf.Parse(new byte[64], "zeros"));
        Assert.Equal("zeros is not BTF (bad magic or shorter than its header)", notBtf.Message);
    }
}
