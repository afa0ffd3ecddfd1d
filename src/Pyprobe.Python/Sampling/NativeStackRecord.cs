namespace Pyprobe.Python.Sampling;

/// <summary>
/// The record <c>record --native</c> adds ahead of each sample: the sampled thread's user registers (as the kernel saved
/// them when the thread entered it) and a copy of its stack from the stack pointer up, which user space unwinds with
/// the files' <c>.eh_frame</c> tables, as <c>perf record --call-graph dwarf</c> does:
/// <c>u64 time; u32 pid; u32 tid; u32 kernel_bytes; u32 0; u32 stack_bytes; u32 flags (NativeStack); u64 ip; u64 sp; u64 bp;
/// [u64 kernel_frames[127] with KernelStack;] u8 stack[stack_bytes]</c>. Time, pid and tid are the sample's, which follows it.
/// </summary>
public readonly ref struct NativeStackRecord
{
    public const int KernelBytesOffset = 16, StackBytesOffset = 24, IpOffset = 32, SpOffset = 40, BpOffset = 48;
    public const int HeaderSize = 56;

    /// <summary>Room for the kernel's frames (<c>--kernel</c>): 127 return addresses, the kernel's own default limit (perf_event_max_stack).</summary>
    public const int KernelRoom = 127 * 8;

    /// <summary>Where the stack copy starts: after the header, and the kernel's frames when the record has them.</summary>
    public static int StackOffset(bool kernelStack) => HeaderSize + (kernelStack ? KernelRoom : 0);

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

    private bool HasKernelFrames =>
        (BinaryPrimitives.ReadUInt32LittleEndian(_bytes[StackSampleRecord.FlagsOffset..]) & (uint)StackSampleFlags.KernelStack) != 0
        && _bytes.Length >= StackOffset(kernelStack: true);

    /// <summary>The stack's bytes from <see cref="Sp"/> up: as many as were mapped, up to the copy's size.</summary>
    public ReadOnlySpan<byte> Stack
    {
        get
        {
            var offset = StackOffset(HasKernelFrames);
            return _bytes.Slice(offset, Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(_bytes[StackBytesOffset..]), 0, _bytes.Length - offset));
        }
    }

    /// <summary>The kernel's frames (<c>--kernel</c>), innermost first: empty when the thread was in user code, or without --kernel.</summary>
    public int KernelFrameCount => HasKernelFrames ? Math.Min(BinaryPrimitives.ReadInt32LittleEndian(_bytes[KernelBytesOffset..]), KernelRoom) / 8 : 0;

    /// <summary>Kernel frame <paramref name="index"/> (0 the innermost: where the thread was; the others return addresses).</summary>
    public ulong KernelFrame(int index) => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[(HeaderSize + index * 8)..]);
}
