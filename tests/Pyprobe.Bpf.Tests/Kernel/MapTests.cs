using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

public class MapTests
{
    [Fact]
    public void ArrayMapStoresAndReturnsValues()
    {
        KernelRequirement.EnsureRoot();
        using var map = BpfMap.Create(MapSpec.Array("t_array", 8, 4));
        map.Update(BitConverter.GetBytes(2u), BitConverter.GetBytes(0x1122334455667788UL));
        var value = new byte[8];
        Assert.True(map.TryLookup(BitConverter.GetBytes(2u), value));
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(value));
        Assert.True(map.TryLookup(BitConverter.GetBytes(3u), value));
        Assert.Equal(0UL, BitConverter.ToUInt64(value));
        Assert.False(map.TryLookup(BitConverter.GetBytes(4u), value));
    }

    [Fact]
    public void HashMapInsertsEnumeratesAndDeletes()
    {
        KernelRequirement.EnsureRoot();
        using var map = BpfMap.Create(MapSpec.Hash("t_hash", 4, 4, 16));
        foreach (var key in new uint[] { 7, 11, 13 }) map.Update(BitConverter.GetBytes(key), BitConverter.GetBytes(key * 10));
        var keys = new List<uint>();
        var current = Array.Empty<byte>();
        var next = new byte[4];
        while (map.TryGetNextKey(current, next))
        {
            keys.Add(BitConverter.ToUInt32(next));
            current = next.ToArray();
        }
        Assert.Equal(new uint[] { 7, 11, 13 }, keys.Order());
        Assert.True(map.Delete(BitConverter.GetBytes(11u)));
        Assert.False(map.Delete(BitConverter.GetBytes(11u)));
        Assert.False(map.TryLookup(BitConverter.GetBytes(11u), new byte[4]));
    }

    [Fact]
    public void PerCpuArrayHasOneSlotPerPossibleCpu()
    {
        KernelRequirement.EnsureRoot();
        using var map = BpfMap.Create(MapSpec.PerCpuArray("t_percpu", 8, 1));
        Assert.Equal(8 * PossibleCpus.Count, map.UserValueSize);
        var values = new byte[map.UserValueSize];
        for (var cpu = 0; cpu < PossibleCpus.Count; cpu++) BitConverter.TryWriteBytes(values.AsSpan(cpu * 8), (ulong)(cpu + 5));
        map.Update(BitConverter.GetBytes(0u), values);
        var expected = Enumerable.Range(0, PossibleCpus.Count).Sum(cpu => (long)(cpu + 5));
        Assert.Equal((ulong)expected, map.SumPerCpuCounter(0));
    }

    [Fact]
    public void RingBufferSizeMustBeAPowerOfTwoPages()
    {
        KernelRequirement.EnsureRoot();
        var error = Assert.Throws<SyscallException>(() => BpfMap.Create(MapSpec.RingBuffer("t_badring", 3 * 4096)));
        Assert.True(error.Is(Errno.EINVAL));
        Assert.Contains("EINVAL", error.Message);
        // The detail is made only on failure, and names the map and its kind.
        Assert.EndsWith(": creating RingBuffer map 't_badring'", error.Message);
        using var ring = BpfMap.Create(MapSpec.RingBuffer("t_ring", 4 * 4096));
        Assert.True(ring.Fd.Value > 0);
    }

    [Fact]
    public void AFailedUpdateNamesTheMap()
    {
        KernelRequirement.EnsureRoot();
        using var map = BpfMap.Create(MapSpec.Array("t_upd", 8, 2));
        // Past the array's end: E2BIG.
        var error = Assert.Throws<SyscallException>(() => map.Update(BitConverter.GetBytes(2u), new byte[8]));
        Assert.True(error.Is(Errno.E2BIG));
        Assert.EndsWith(": map 't_upd'", error.Message);
    }

    [Theory]
    [InlineData("0-1", 2)]
    [InlineData("0", 1)]
    [InlineData("0,2-3", 4)]
    [InlineData("0-7\n", 8)]
    public void PossibleCpuListIsParsed(string text, int expected) => Assert.Equal(expected, PossibleCpus.Parse(text));

    /// <summary>
    /// Each disposed map's fd no longer holds that map (asked of the fd itself: the process's fd count moves with the
    /// tests running beside this one, and a closed fd's number may be taken again at once).
    /// </summary>
    [Fact]
    public void ClosingMapsReleasesTheirFds()
    {
        KernelRequirement.EnsureRoot();
        for (var i = 0; i < 50; i++)
        {
            var map = BpfMap.Create(MapSpec.Array("t_leak", 8, 1));
            var fd = map.Fd.Value;
            var id = MapIdOf(fd);
            Assert.NotNull(id);
            map.Dispose();
            Assert.NotEqual(id, MapIdOf(fd));
        }
    }

    private static string? MapIdOf(int fd)
    {
        try
        {
            return File.ReadLines($"/proc/self/fdinfo/{fd}").FirstOrDefault(l => l.StartsWith("map_id:", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return null;
        }
    }
}
