using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>The kernel's copies read as memory: whole from one copy, or not at all.</summary>
public class CapturedMemoryTests
{
    private static readonly IMemoryReader Copies = new CapturedMemory([(0x1000, [1, 2, 3, 4, 5, 6, 7, 8]), (0x1008, [9, 10])]);

    [Fact]
    public void AReadInsideOneCopyIsServed()
    {
        Assert.Equal(0x0807060504030201UL, Copies.ReadU64(0x1000));
        Assert.Equal([9, 10], Copies.ReadBytes(0x1008, 2));
        Assert.Equal(Array.Empty<byte>(), Copies.ReadBytes(0x1008 + 2, 0));
    }

    [Theory]
    [InlineData(0x0fff, 2)]  // starts before the first copy
    [InlineData(0x1004, 8)]  // runs past the first copy's end into the next: two copies are never pieced together
    [InlineData(0x1009, 2)]  // runs past the last copy's end
    [InlineData(0x2000, 1)]  // nothing copied there
    public void AReadThatNoCopyHoldsWholeIsRefused(ulong address, int count)
    {
        Assert.Throws<ProcessMemoryException>(() => Copies.ReadBytes(address, count));
    }
}
