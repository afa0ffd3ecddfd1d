using System.Collections.Immutable;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// The byte layout of one event record, shared by the BPF code generator that writes it and the
/// decoder that reads it, so the two cannot drift apart.
/// <code>
///  0  u64 timestamp (bpf_ktime_get_ns: CLOCK_MONOTONIC)
///  8  u32 tgid        12 u32 tid
/// 16  u32 probe id (the attach cookie)
/// 20  u32 string flags (bit j: string j was longer than MaxStringLength; bits EncodingShift(j): its encoding;
///     FirstLineBit: see there)
/// 24  i64 value[ArgumentCount]    (a string argument's value is its address)
///     u16 length[StringCount], padded to 8   (InternedLength: the string was sent before, bytes omitted)
///     u64 fingerprint[StringCount]          (0: the string is not interned)
///     string bytes, back to back, without NULs
/// </code>
/// </summary>
public sealed class UsdtEventLayout
{
    public const int TimestampOffset = 0;
    public const int TgidOffset = 8;
    public const int TidOffset = 12;
    public const int ProbeIdOffset = 16;
    public const int TruncatedOffset = 20;
    public const int ValuesOffset = 24;

    /// <summary>
    /// Bit of the truncated-string word a <see cref="RecordRewrite"/> sets when it replaced a function event's line by
    /// the first line of the event's code object (flow keys calls by code object).
    /// </summary>
    public const int FirstLineBit = 31;

    /// <summary>Strings whose <see cref="StringEncoding"/> the flags word can carry (string j's is at <see cref="EncodingShift"/>).</summary>
    public const int MaxEncodedStrings = 7;

    /// <summary>
    /// Where string j's <see cref="StringEncoding"/> lies in the flags word (2 bits, 0: UTF-8), for j &lt; <see cref="MaxEncodedStrings"/>:
    /// a Python str that is not ASCII is sent as CPython holds it (one, two or four bytes a character) and made UTF-8 when read.
    /// </summary>
    public static int EncodingShift(int stringIndex) => 16 + 2 * stringIndex;

    /// <summary>String <paramref name="stringIndex"/>'s encoding, from a record's flags word.</summary>
    public static StringEncoding EncodingOf(uint flags, int stringIndex) => stringIndex < MaxEncodedStrings
        ? (StringEncoding)((flags >> EncodingShift(stringIndex)) & 3)
        : StringEncoding.Utf8;

    /// <summary>Longest string kept whole; longer ones are cut here and marked.</summary>
    public const int MaxStringLength = 4096;

    /// <summary>Length value of a string whose bytes were sent in an earlier record (see <see cref="StringInterning"/>).</summary>
    public const ushort InternedLength = 0xFFFF;

    public UsdtEventLayout(int argumentCount, IReadOnlyList<int> stringArguments, StringInterning? interning = null, StringPairMemo? pairs = null)
    {
        if (argumentCount is < 0 or > 12) throw new ArgumentOutOfRangeException(nameof(argumentCount), "USDT probes have at most 12 arguments");
        if (stringArguments.Any(i => i < 0 || i >= argumentCount)) throw new ArgumentException("string argument index out of range");
        ArgumentCount = argumentCount;
        StringArguments = [.. stringArguments];
        _slotOfArgument = new int[argumentCount];
        Array.Fill(_slotOfArgument, -1);
        for (var slot = 0; slot < StringArguments.Length; slot++) _slotOfArgument[StringArguments[slot]] = slot;
        LengthsOffset = ValuesOffset + 8 * argumentCount;
        FingerprintsOffset = LengthsOffset + (2 * stringArguments.Count + 7) / 8 * 8;
        StringsOffset = FingerprintsOffset + 8 * stringArguments.Count;
        Interning = interning;
        Pairs = stringArguments.Count == 2 ? pairs : null;
    }

    /// <summary>How string arguments are recognised as already sent, or null to send them with every event.</summary>
    public StringInterning? Interning { get; }

    /// <summary>For a probe whose two strings come as a pair: the memo that sends a pair seen before by reference, or null.</summary>
    public StringPairMemo? Pairs { get; }

    public int FingerprintsOffset { get; }
    public int FingerprintOffset(int stringIndex) => FingerprintsOffset + 8 * stringIndex;

    public int ArgumentCount { get; }

    /// <summary>Indices of the arguments that are C strings, in the order their bytes follow.</summary>
    public ImmutableArray<int> StringArguments { get; }

    /// <summary>Per argument, its place among <see cref="StringArguments"/> (-1: not a string); decoding asks this for every string of every event.</summary>
    private readonly int[] _slotOfArgument;

    /// <summary>The place of argument <paramref name="argument"/> among the string arguments, or -1.</summary>
    public int StringSlotOf(int argument) => (uint)argument < (uint)_slotOfArgument.Length ? _slotOfArgument[argument] : -1;

    public int LengthsOffset { get; }
    public int StringsOffset { get; }

    /// <summary>
    /// The largest record being built: every string at its maximum, plus the one byte past the limit
    /// that tells a cut string from one of exactly MaxStringLength bytes and the NUL the kernel writes.
    /// </summary>
    public int MaxRecordSize => StringsOffset + StringArguments.Length * MaxStringLength + 2;

    public static int ValueOffset(int argument) => ValuesOffset + 8 * argument;
    public int LengthOffset(int stringIndex) => LengthsOffset + 2 * stringIndex;
}
