namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// These tests load real programs into the running kernel. They never skip: without root they fail
/// with a message saying why (CI runs as root; so does every developer machine of this project).
/// </summary>
internal static class KernelRequirement
{
    public static void EnsureRoot()
    {
        if (Environment.UserName != "root" && Sys.LibCProbe.EffectiveUserId != 0)
            Assert.Fail("this test loads BPF programs into the kernel and must run as root");
    }
}
