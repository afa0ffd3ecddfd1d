namespace Pyprobe.Python.Analysis;

/// <summary>
/// Byte layouts shared by the generated call-statistics programs and the user-space reader, so the two
/// cannot drift apart.
/// <code>
/// stats key (32 bytes)           stats value (1296 bytes)              thread stack (value of the tid map)
///  0 u32 pid                      0 u64 calls (timed + untimed)          0 u32 depth (logical; may exceed MaxFrames)
///  4 u32 first line (0: unknown)  8 u64 timed calls                      4 u32 unused
///  8 u64 filename pointer        16 u64 total ns (inclusive)
/// 16 u64 funcname pointer        24 u64 self ns                          8 frame[MaxFrames], 56 bytes each:
/// 24 u32 name generation         32 u64 min ns (0: none yet)                 +0  u64 entry ktime
/// 28 u32 process epoch           40 u64 max ns                               +8  u64 filename pointer
///                                48 u64 histogram[156]                       +16 u64 funcname pointer (matched at return)
///                                                                            +24 u64 time spent in callees
///                                                                            +32 u32 entry line, +36 u32 name generation
///                                                                            +40 u64 key's funcname pointer
///                                                                            +48 u32 process epoch, +52 unused
/// name record (ring buffer): the 32-byte key, u16 filename length, u16 funcname length, u32 truncated bits,
/// then both strings back to back without NULs.
/// A counts-only session's value is its first field alone (<see cref="CountsValueSize"/>).
/// </code>
/// </summary>
public static class CallStatsLayout
{
    public const int KeySize = 32;
    public const int KeyPidOffset = 0;
    public const int KeyLineOffset = 4;
    public const int KeyFilenameOffset = 8;
    public const int KeyFuncnameOffset = 16;
    /// <summary>
    /// How many code objects named by the key's funcname pointer (a slot of <see cref="CallStatsProgram.GenerationsMap"/>)
    /// had died when the call began: a code object at a freed one's address, with names at its names' addresses, is a
    /// new row, not the old one's (see <see cref="CallStatsProgram.ForgetProgram"/>).
    /// </summary>
    public const int KeyGenerationOffset = 24;
    /// <summary>The low half of the process's epoch (CodeObjectMemo.EpochsMap): a new program in the same pid is a new row.</summary>
    public const int KeyEpochOffset = 28;

    public const int CallsOffset = 0;
    public const int TimedOffset = 8;
    public const int TotalOffset = 16;
    public const int SelfOffset = 24;
    public const int MinOffset = 32;
    public const int MaxOffset = 40;
    public const int HistogramOffset = 48;

    /// <summary>Log-linear histogram: 4 linear sub-buckets per power of two, exact below 4 ns, up to 2^40 ns (~1100 s).</summary>
    public const int SubBucketsLog2 = 2;
    public const int HighestExponent = 39;
    public const int BucketCount = 4 + (HighestExponent - 1) * 4; // 156: indices 0..155
    public const int StatsValueSize = HistogramOffset + 8 * BucketCount;

    /// <summary>A counts-only session's value (<see cref="CallStatsOptions.Timed"/> false): the calls counter alone.</summary>
    public const int CountsValueSize = 8;

    public const int DefaultMaxFrames = 64;
    public const int StackHeaderSize = 8;
    public const int FrameSize = 56;
    public const int FrameEntryOffset = 0;
    public const int FrameFilenameOffset = 8;
    public const int FrameFuncnameOffset = 16;
    public const int FrameChildOffset = 24;
    public const int FrameLineOffset = 32;
    /// <summary>The name the row is keyed by: the qualified name a USDT entry read from the code object (3.11), else the matched name.</summary>
    public const int FrameKeyNameOffset = 40;
    public const int FrameGenerationOffset = 36;
    public const int FrameEpochOffset = 48;

    public static int StackValueSize(int maxFrames) => StackHeaderSize + FrameSize * maxFrames;

    public const int NameLengthsOffset = KeySize;   // u16 filename length, u16 funcname length
    /// <summary>Bits 0-1: a name was cut; from bit 16 their encodings (as an event record's: UsdtEventLayout.EncodingShift); CarriesCallFlag: see below.</summary>
    public const int NameTruncatedOffset = KeySize + 4;
    /// <summary>
    /// Set in the name record's flags when the record also carries one call: the kernel could not create the
    /// function's statistics entry (no memory at that moment, or the table full), so the call travels to user space.
    /// </summary>
    public const uint CarriesCallFlag = 1u << 31;
    public const int CallTimedOffset = KeySize + 8;     // u64: 1 when the call was timed
    public const int CallDurationOffset = KeySize + 16; // u64 ns
    public const int CallSelfOffset = KeySize + 24;     // u64 ns
    public const int NameStringsOffset = KeySize + 32;
    public const int MaxNameLength = 1024;

    /// <summary>Per-CPU counters at the start of the scratch value, then the name record being built.</summary>
    public const int LostNamesCounter = 0;
    public const int OverflowEntriesCounter = 8;
    public const int UnmatchedReturnsCounter = 16;
    public const int DiscardedFramesCounter = 24;
    public const int StatsFullCounter = 32;
    public const int NoStackCounter = 40;
    public const int ScratchRecordOffset = 64;
    public const int ScratchValueSize = (ScratchRecordOffset + NameStringsOffset + 2 * MaxNameLength + 1 + 7) / 8 * 8;

    /// <summary>The bucket a duration falls in; the generated BPF computes exactly this.</summary>
    public static int BucketIndex(ulong ns)
    {
        if (ns < 4) return (int)ns;
        var exponent = 63 - System.Numerics.BitOperations.LeadingZeroCount(ns);
        if (exponent > HighestExponent) return BucketCount - 1;
        var sub = (int)((ns >> (exponent - SubBucketsLog2)) & 3);
        return exponent * 4 - 4 + sub;
    }

    /// <summary>Smallest duration in bucket <paramref name="index"/>.</summary>
    public static ulong BucketLowerBound(int index)
    {
        if (index < 4) return (ulong)index;
        var exponent = (index - 4) / 4 + 2;
        var sub = (ulong)((index - 4) % 4);
        return (4 + sub) << (exponent - SubBucketsLog2);
    }

    /// <summary>One past the largest duration in bucket <paramref name="index"/> (the last bucket is open-ended).</summary>
    public static ulong BucketUpperBound(int index) => index + 1 < BucketCount ? BucketLowerBound(index + 1) : ulong.MaxValue;
}
