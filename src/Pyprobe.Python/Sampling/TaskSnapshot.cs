using System.Buffers.Binary;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// <c>record --tasks</c>: the asyncio task a sample was taken in, as the kernel saw it then, after the sample's frames
/// (<see cref="StackSampleFlags.TaskSnapshot"/>): <c>u64 task; u64 name_object; i32 coroutine_frame; u32 name_length;
/// name_object's first name_length bytes (up to NameBytes, to its page's end)</c>. A task that ends before its samples
/// are drained is still named by it, and a task made at an ended one's addresses is told from it by its name, without
/// reading the process again.
/// </summary>
public readonly ref struct TaskSnapshot
{
    public const int TaskOffset = 0, NameObjectOffset = 8, CoroutineFrameOffset = 16, NameLengthOffset = 20, NameOffset = 24;
    /// <summary>Bytes of the name object copied: a str's header and 80 (3.8–3.11) or 88 ASCII characters, or an int's digits.</summary>
    public const int NameBytes = 128;
    public const int Size = NameOffset + NameBytes;

    private readonly ReadOnlySpan<byte> _bytes;

    public TaskSnapshot(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size) throw new ArgumentException($"a task snapshot has {Size} bytes, got {bytes.Length}");
        _bytes = bytes;
    }

    /// <summary>The task's address.</summary>
    public ulong Task => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[TaskOffset..]);

    /// <summary>The task's name object's address (0 where it could not be read).</summary>
    public ulong NameObject => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[NameObjectOffset..]);

    /// <summary>The index among the sample's frames of the task's coroutine's (the outermost generator's), or -1 where the walk met none.</summary>
    public int CoroutineFrame => BinaryPrimitives.ReadInt32LittleEndian(_bytes[CoroutineFrameOffset..]);

    /// <summary>
    /// The name object's first bytes at the sample: up to <see cref="NameBytes"/>, as far as its page's end (the next page
    /// may not be there to read); none where they could not be read.
    /// </summary>
    public ReadOnlySpan<byte> Name => _bytes.Slice(NameOffset, (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(_bytes[NameLengthOffset..]), NameBytes));
}
