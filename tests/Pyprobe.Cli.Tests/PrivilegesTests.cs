using System.Globalization;
using Pyprobe.Cli.Commands;

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
        Assert.Equal(expected, Privileges.EffectiveCapabilities());
    }
}
