namespace Pyprobe.Python.Sampling;

/// <summary>
/// The record the stack walk sends the first time it meets a code object (<see cref="StackSampleFlags.CodeObject"/>):
/// copies of the code object and of the three objects that name it — its name, its file name and its line table —
/// made while the frame ran. A module's or a class's body is freed as soon as it has run, often before user space
/// could read it; from the copies it is named all the same.
/// </summary>
/// <remarks>
/// <c>header (as <see cref="StackSampleRecord"/>: pid, thread_state = the code object's address, flags);
/// regions[4] { u64 address; u32 length; u32 reserved }; code[CodeBytes]; name[NameBytes]; file[FileBytes]; table[length]</c>
/// (the line table's room is what the per-CPU scratch value has left at the walk's depth: 15–24 KB, 23 KB at 512 frames).
/// A region whose copy failed has length 0; a str cut at a page end is shorter than its room; the line table (a bytes
/// object, copied as its size says) is the record's end.
/// </remarks>
public static class CodeCaptureRecord
{
    public const int RegionsOffset = StackSampleRecord.HeaderSize;
    public const int RegionCount = 4, RegionSize = 16;
    public const int CodeBytes = 256, NameBytes = 256, FileBytes = 512;
    public const int CodeRegion = 0, NameRegion = 1, FileRegion = 2, TableRegion = 3;
    private static readonly int[] Rooms = [CodeBytes, NameBytes, FileBytes];

    /// <summary>Where region <paramref name="index"/>'s bytes start in the record.</summary>
    public static int DataOffset(int index) => RegionsOffset + RegionCount * RegionSize + Rooms[..index].Sum();

    /// <summary>Room for region <paramref name="index"/>'s copy; the line table's is what the walk's scratch value has left (<see cref="StackWalkFragment"/>).</summary>
    public static int Room(int index) => index < Rooms.Length ? Rooms[index] : int.MaxValue;

    /// <summary>The record's size at least: everything before the line table's copy, which ends it.</summary>
    public static int MinSize => DataOffset(TableRegion);

    /// <summary>The code object's address (the header's thread-state field).</summary>
    public static ulong Code(ReadOnlySpan<byte> record) => new StackSampleRecord(record).ThreadState;

    /// <summary>The copies as memory to read a code object from; null for a record too short to be one.</summary>
    public static CapturedMemory? Memory(ReadOnlySpan<byte> record)
    {
        if (record.Length < MinSize) return null;
        var regions = new List<(ulong, byte[])>(RegionCount);
        for (var i = 0; i < RegionCount; i++)
        {
            var region = record.Slice(RegionsOffset + i * RegionSize, RegionSize);
            var address = BinaryPrimitives.ReadUInt64LittleEndian(region);
            var length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(region[8..]), (uint)Math.Min(Room(i), record.Length - DataOffset(i)));
            if (address != 0 && length > 0) regions.Add((address, record.Slice(DataOffset(i), length).ToArray()));
        }
        return new CapturedMemory(regions);
    }
}

/// <summary>
/// Parts of a target's memory as they were copied: a read served whole from one copy, or refused
/// (<see cref="ProcessMemoryException"/>) — never pieced together with live memory, which may hold something else by now.
/// </summary>
public sealed class CapturedMemory(IReadOnlyList<(ulong Address, byte[] Bytes)> regions) : IMemoryReader
{
    public void Read(ulong address, Span<byte> buffer)
    {
        foreach (var (start, bytes) in regions)
        {
            if (address < start || address - start > (ulong)bytes.Length) continue;
            var offset = (int)(address - start);
            if (bytes.Length - offset < buffer.Length) continue;
            bytes.AsSpan(offset, buffer.Length).CopyTo(buffer);
            return;
        }
        throw new ProcessMemoryException($"{buffer.Length} bytes at 0x{address:x} were not copied");
    }
}
