using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

public class ProgramLoadTests
{
    [Fact]
    public void ValidProgramLoads()
    {
        KernelRequirement.EnsureRoot();
        var code = new InstructionBuilder().Mov64(Register.R0, 0).Exit().Assemble();
        using var program = BpfProgram.Load(new ProgramSpec("t_ok", ProgramType.Kprobe, code.Bytecode));
        Assert.True(program.Fd.Value > 0);
    }

    [Fact]
    public void RejectedProgramCarriesTheVerifierMessage()
    {
        KernelRequirement.EnsureRoot();
        // Exit without setting R0: the verifier says "R0 !read_ok".
        var code = new InstructionBuilder().Exit().Assemble();
        var error = Assert.Throws<VerifierException>(() => BpfProgram.Load(new ProgramSpec("t_bad", ProgramType.Kprobe, code.Bytecode)));
        Assert.Equal((int)Errno.EACCES, error.Errno);
        Assert.Contains("R0 !read_ok", error.Message);
        Assert.Contains("R0 !read_ok", error.VerifierLog);
    }

    [Fact]
    public void GplOnlyHelperIsRefusedWithoutGplLicense()
    {
        KernelRequirement.EnsureRoot();
        var code = new InstructionBuilder()
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, -8)
            .Mov64(Register.R2, 8).Mov64(Register.R3, 0)
            .Call(HelperFunction.ProbeReadUser)
            .Mov64(Register.R0, 0).Exit().Assemble();
        var error = Assert.Throws<VerifierException>(() => BpfProgram.Load(new ProgramSpec("t_lic", ProgramType.Kprobe, code.Bytecode, License: "MIT")));
        Assert.Contains("GPL", error.Message);
        using var ok = BpfProgram.Load(new ProgramSpec("t_gpl", ProgramType.Kprobe, code.Bytecode, License: "GPL"));
    }

    [Fact]
    public void ThisKernelHasTheFeaturesPyprobePrefers()
    {
        KernelRequirement.EnsureRoot();
        // Facts of this machine's kernel (6.18): uprobe_multi with the PID fix, perf links, ref_ctr.
        Assert.True(KernelFeatures.HasUprobeMulti, KernelFeatures.Describe());
        Assert.True(KernelFeatures.HasUprobeMultiPidFilterFix, KernelFeatures.Describe());
        Assert.True(KernelFeatures.HasPerfEventLink, KernelFeatures.Describe());
        Assert.True(KernelFeatures.HasRefCtrOffset, KernelFeatures.Describe());
        Assert.True(KernelFeatures.HasBpfLoop, KernelFeatures.Describe());
        Assert.True(KernelFeatures.HasGrowingMaps, KernelFeatures.Describe());
        Assert.False(MemlockLimit.RemoveIfNeeded());
    }

    [Fact]
    public void TheCombinedProbeAnswersAsTheTwoAloneDo()
    {
        KernelRequirement.EnsureRoot();
        // bpf_loop and growing hashes are asked with one program first; each alone must load here too (6.18 has both).
        Assert.True(KernelFeatures.ProbeGrowingMaps(withBpfLoop: true));
        Assert.True(KernelFeatures.ProbeGrowingMaps(withBpfLoop: false));
        Assert.True(KernelFeatures.ProbeBpfLoop());
    }
}
