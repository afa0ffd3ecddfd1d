namespace Pyprobe.Python.Sampling;

/// <summary>
/// The record <c>record --native</c> adds ahead of each sample: the sampled thread's user registers (as the kernel saved
/// them when the thread entered it) and a copy of its stack from the stack pointer up, which user space unwinds with
/// the files' <c>.eh_frame</c> tables, as <c>perf record --call-graph dwarf</c> does:
/// <c>u64 time; u32 pid; u32 tid; u64 0; u32 stack_bytes; u32 flags (NativeStack); u64 ip; u64 sp; u64 bp; u8 stack[stack_bytes]</c>.
/// Time, pid and tid are the sample's, which follows it.
/// </summary>
public readonly ref struct NativeStackRecord
{
    public const int StackBytesOffset = 24, IpOffset = 32, SpOffset = 40, BpOffset = 48;
    public const int HeaderSize = 56;

    private readonly ReadOnlySpan<byte> _bytes;

    public NativeStackRecord(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderSize) throw new ArgumentException($"a native stack record has at least {HeaderSize} bytes, got {bytes.Length}");
        _bytes = bytes;
    }

    public ulong TimeNs => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[StackSampleRecord.TimeOffset..]);
    public int Pid => BinaryPrimitives.ReadInt32LittleEndian(_bytes[StackSampleRecord.PidOffset..]);
    public int Tid => BinaryPrimitives.ReadInt32LittleEndian(_bytes[StackSampleRecord.TidOffset..]);
    public ulong Ip => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[IpOffset..]);
    public ulong Sp => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[SpOffset..]);
    public ulong Bp => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[BpOffset..]);

    /// <summary>The stack's bytes from <see cref="Sp"/> up: as many as were mapped, up to the copy's size.</summary>
    public ReadOnlySpan<byte> Stack =>
        _bytes.Slice(HeaderSize, Math.Min(BinaryPrimitives.ReadInt32LittleEndian(_bytes[StackBytesOffset..]), _bytes.Length - HeaderSize));
}
