using Pyprobe.Bpf.Links;

namespace Pyprobe.Bpf.Tests.Kernel;

public class UprobeRegistrationWarmupTests
{
    [Fact]
    public void RegistersOnAPrivateMemfdAndLeavesNothingBehind()
    {
        KernelRequirement.EnsureRoot();
        Assert.True(UprobeRegistrationWarmup.RegisterAndRelease(), "the throwaway uprobe_multi registration failed on this kernel");
        // Its memfd is closed before it returns (the program and link are disposed with it): no fd still names it.
        var leftovers = Directory.GetFiles("/proc/self/fd")
            .Select(fd => new FileInfo(fd).LinkTarget ?? "")
            .Where(target => target.Contains("pyprobe-uprobe-warmup", StringComparison.Ordinal))
            .ToList();
        Assert.Empty(leftovers);
    }
}
