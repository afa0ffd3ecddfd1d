namespace Pyprobe.Python.Runtime;

/// <summary>
/// A process's memory read in aligned blocks, each kept once read: a walk over thousands of small objects that lie
/// near each other (asyncio tasks, their coroutines and frames) makes one read per block instead of one per field.
/// For one pass only: a kept block is what the process held when it was read, which a running process changes.
/// Bounded: past <see cref="MaxBlocks"/> blocks the oldest are forgotten all at once.
/// </summary>
public sealed class BlockCachedMemory(IMemoryReader memory) : IMemoryReader
{
    public const int BlockSize = 1024;
    public const int MaxBlocks = 16_384; // 16 MiB
    private readonly Dictionary<ulong, byte[]?> _blocks = [];

    /// <summary>Reads made of the process (blocks, and reads too large to keep).</summary>
    public int Reads { get; private set; }

    public void Read(ulong address, Span<byte> buffer)
    {
        if (buffer.Length > BlockSize)
        {
            Reads++;
            memory.Read(address, buffer);
            return;
        }
        int done = 0;
        while (done < buffer.Length)
        {
            ulong at = address + (ulong)done;
            ulong start = at & ~(ulong)(BlockSize - 1);
            var block = Block(start) ?? throw new ProcessMemoryException($"cannot read 0x{at:x}");
            int offset = (int)(at - start);
            int count = Math.Min(buffer.Length - done, BlockSize - offset);
            block.AsSpan(offset, count).CopyTo(buffer[done..]);
            done += count;
        }
    }

    private byte[]? Block(ulong start)
    {
        if (_blocks.TryGetValue(start, out var known)) return known;
        if (_blocks.Count >= MaxBlocks) _blocks.Clear();
        byte[]? block = new byte[BlockSize];
        Reads++;
        try { memory.Read(start, block); }
        catch (ProcessMemoryException) { block = null; } // a block at a mapping's edge: unmapped, or past the end
        _blocks[start] = block;
        return block;
    }
}
