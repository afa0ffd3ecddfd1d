namespace Pyprobe.Python.Sampling;

/// <summary>What went wrong or was cut while a stack was walked in the kernel, and what kind of record it is.</summary>
[Flags]
public enum StackSampleFlags : uint
{
    None = 0,
    /// <summary>The stack was deeper than the program walks: the innermost frames are there, the outermost are not.</summary>
    Truncated = 1,
    /// <summary>No thread state of the process belongs to the sampled thread (a thread Python does not know, or too many threads).</summary>
    NoThreadState = 2,
    /// <summary>A frame could not be read (freed while walked, or paged out): the frames before it are kept.</summary>
    ReadError = 4,
    /// <summary>A switch-out (<c>--idle</c>): the thread left its CPU at the record's time with this stack.</summary>
    OffCpu = 8,
    /// <summary>A switch-in (<c>--idle</c>), header only: the thread came back on a CPU at the record's time.</summary>
    OnCpu = 16,
    /// <summary>Not a sample: copies of a code object the walk met for the first time (<see cref="CodeCaptureRecord"/>).</summary>
    CodeObject = 32,
    /// <summary>The sampled thread held the GIL (only looked at with <c>record --gil</c>).</summary>
    HoldsGil = 64,
    /// <summary>Not a sample: the thread's user registers and a copy of its native stack, sent just before the sample it belongs to (<see cref="NativeStackRecord"/>).</summary>
    NativeStack = 128,
    /// <summary>On a <see cref="NativeStack"/> record: the kernel's frames come first in it (<c>--kernel</c>).</summary>
    KernelStack = 256,
    /// <summary>The sample was taken in an asyncio task: a <see cref="Sampling.TaskSnapshot"/> follows its frames (<c>record --tasks</c>).</summary>
    TaskSnapshot = 512,
}

/// <summary>One frame as the kernel saw it: the code object's address, the position in its bytecode, its first line.</summary>
/// <param name="Position">≤ 3.10 the frame's <c>f_lasti</c>; 3.11+ the byte offset of the instruction pointer in <c>co_code_adaptive</c>.</param>
/// <param name="FirstLineNo">Read with the frame, so a code object freed and replaced at the same address is noticed.</param>
public readonly record struct SampledFrame(ulong Code, uint Position, uint FirstLineNo);

/// <summary>
/// The record the stack-walking program sends per sample, innermost frame first:
/// <c>u64 time; u32 pid; u32 tid; u64 thread_state; u32 frame_count; u32 flags; frames[frame_count] { u64 code; u32 position; u32 first_line }</c>, then with
/// <see cref="StackSampleFlags.TaskSnapshot"/> a <see cref="TaskSnapshot"/>.
/// </summary>
public readonly ref struct StackSampleRecord
{
    public const int TimeOffset = 0, PidOffset = 8, TidOffset = 12, ThreadStateOffset = 16, FrameCountOffset = 24, FlagsOffset = 28;
    public const int HeaderSize = 32, FrameSize = 16;

    private readonly ReadOnlySpan<byte> _bytes;

    public StackSampleRecord(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderSize) throw new ArgumentException($"a stack sample record has at least {HeaderSize} bytes, got {bytes.Length}");
        _bytes = bytes;
    }

    public ulong TimeNs => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[TimeOffset..]);
    public int Pid => BinaryPrimitives.ReadInt32LittleEndian(_bytes[PidOffset..]);
    public int Tid => BinaryPrimitives.ReadInt32LittleEndian(_bytes[TidOffset..]);
    public ulong ThreadState => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[ThreadStateOffset..]);
    public StackSampleFlags Flags => (StackSampleFlags)BinaryPrimitives.ReadUInt32LittleEndian(_bytes[FlagsOffset..]);

    /// <summary>Frames present in the record (never more than its bytes hold).</summary>
    public int FrameCount => Math.Min(BinaryPrimitives.ReadInt32LittleEndian(_bytes[FrameCountOffset..]), (_bytes.Length - HeaderSize) / FrameSize);

    /// <summary>
    /// Set by the walk in a frame's position: the frame is the outermost of its run of the interpreter's eval loop (the
    /// one a C caller entered it with), so a native stack's <c>_PyEval_EvalFrameDefault</c> frames can be matched with
    /// the Python frames each ran. Up to 3.10 every frame is one; 3.11 says so in the frame, 3.12+ by the shim frame behind it.
    /// </summary>
    public const uint EntryFrameBit = 0x8000_0000;

    /// <summary>The task the sample was taken in, as the kernel saw it (<see cref="StackSampleFlags.TaskSnapshot"/>); false where it sent none.</summary>
    public bool TryGetTask(out TaskSnapshot task)
    {
        var at = HeaderSize + FrameCount * FrameSize;
        var has = (Flags & StackSampleFlags.TaskSnapshot) != 0 && _bytes.Length - at >= TaskSnapshot.Size;
        task = has ? new TaskSnapshot(_bytes.Slice(at, TaskSnapshot.Size)) : default;
        return has;
    }

    /// <summary>Frame <paramref name="index"/>, 0 being the innermost (the one running).</summary>
    public SampledFrame Frame(int index)
    {
        var frame = _bytes.Slice(HeaderSize + index * FrameSize, FrameSize);
        return new SampledFrame(
            BinaryPrimitives.ReadUInt64LittleEndian(frame),
            BinaryPrimitives.ReadUInt32LittleEndian(frame[8..]) & ~EntryFrameBit,
            BinaryPrimitives.ReadUInt32LittleEndian(frame[12..]));
    }

    /// <summary>Whether the walk marked frame <paramref name="index"/> the outermost of its eval-loop run (<see cref="EntryFrameBit"/>; 3.11+).</summary>
    public bool IsEntryFrame(int index) =>
        (BinaryPrimitives.ReadUInt32LittleEndian(_bytes[(HeaderSize + index * FrameSize + 8)..]) & EntryFrameBit) != 0;
}
