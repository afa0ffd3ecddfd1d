using System.Buffers.Binary;
using Pyprobe.Bpf.Maps;
using Pyprobe.Python.EvalFrame;

namespace Pyprobe.Python.Tests.EvalFrame;

/// <summary>
/// The memo's user-space side on a real kernel map: forgetting one process's code objects (at a new interpreter)
/// drops exactly its entries, whatever else the map holds. Its kernel side is proven through traces
/// (Pyprobe.Cli.Tests EvalFrameMemoTests).
/// </summary>
public sealed class CodeObjectMemoTests
{
    [Fact]
    public void Forget_drops_exactly_the_entries_of_one_process()
    {
        Requirements.EnsureRoot();
        using var memo = BpfMap.Create(new MapSpec("test_efmemo", MapType.LruHash, CodeObjectMemo.KeySize, CodeObjectMemo.ValueSize, CodeObjectMemo.Capacity));
        var value = new byte[CodeObjectMemo.ValueSize];
        byte[] Key(int tgid, ulong code)
        {
            var key = new byte[CodeObjectMemo.KeySize];
            BinaryPrimitives.WriteInt32LittleEndian(key, tgid);
            BinaryPrimitives.WriteUInt64LittleEndian(key.AsSpan(8), code);
            return key;
        }
        for (var i = 0UL; i < 100; i++)
        {
            memo.Update(Key(4242, 0x7f00_0000_0000 + 0x40 * i), value);
            if (i % 4 == 0) memo.Update(Key(777, 0x7f00_0000_0000 + 0x40 * i), value);
        }

        Assert.Equal(100, CodeObjectMemo.Forget(memo, 4242));
        Assert.Equal(0, CodeObjectMemo.Forget(memo, 4242));
        var left = new byte[CodeObjectMemo.ValueSize];
        for (var i = 0UL; i < 100; i++)
        {
            Assert.False(memo.TryLookup(Key(4242, 0x7f00_0000_0000 + 0x40 * i), left));
            Assert.Equal(i % 4 == 0, memo.TryLookup(Key(777, 0x7f00_0000_0000 + 0x40 * i), left));
        }
    }
}
