using System.Globalization;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Cli.Tests;

public class PrivilegesTests
{
    /// <summary>capget's answer is the kernel's own CapEff line for this process (the tests run as root: every bit set).</summary>
    [Fact]
    public void EffectiveCapabilitiesAreWhatProcStatusSays()
    {
        var line = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        var expected = ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Assert.NotEqual(0UL, expected);
        Assert.Equal(expected, Capabilities.Effective());
    }

    /// <summary>
    /// Root holds CAP_SYS_PTRACE, so a refused read of another process is not about it: the hint says what else refuses
    /// it (pid 1 of a Firecracker guest refuses root here) instead of telling root to become root.
    /// </summary>
    [Fact]
    public void AProcessAccessRefusedToRootIsNotBlamedOnPrivileges()
    {
        Assert.True(Capabilities.Has(Capabilities.SysPtrace), "the tests run as root");
        Assert.Equal("(pyprobe has CAP_SYS_PTRACE: something else refuses it here — a security module, or a process another user namespace owns)",
            Capabilities.ProcessAccessHint("reading another process"));
    }
}
