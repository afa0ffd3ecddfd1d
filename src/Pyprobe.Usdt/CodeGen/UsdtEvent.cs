using System.Buffers.Binary;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>A zero-copy view of one record written by <see cref="UsdtEventProgram"/>.</summary>
public readonly ref struct UsdtEvent
{
    private readonly ReadOnlySpan<byte> _record;
    private readonly UsdtEventLayout _layout;

    public UsdtEvent(ReadOnlySpan<byte> record, UsdtEventLayout layout)
    {
        if (record.Length < layout.StringsOffset) throw new UsdtException($"short event record: {record.Length} bytes, expected at least {layout.StringsOffset}");
        _record = record;
        _layout = layout;
    }

    public ulong Timestamp => BinaryPrimitives.ReadUInt64LittleEndian(_record);
    public int Tgid => BinaryPrimitives.ReadInt32LittleEndian(_record[UsdtEventLayout.TgidOffset..]);
    public int Tid => BinaryPrimitives.ReadInt32LittleEndian(_record[UsdtEventLayout.TidOffset..]);
    public uint ProbeId => BinaryPrimitives.ReadUInt32LittleEndian(_record[UsdtEventLayout.ProbeIdOffset..]);

    public long Value(int argument) => BinaryPrimitives.ReadInt64LittleEndian(_record[UsdtEventLayout.ValueOffset(argument)..]);

    public bool IsTruncated(int stringIndex) => (BinaryPrimitives.ReadUInt32LittleEndian(_record[UsdtEventLayout.TruncatedOffset..]) & (1u << stringIndex)) != 0;

    /// <summary>The line value is the first line of the event's code object (<see cref="UsdtEventLayout.FirstLineBit"/>).</summary>
    public bool LineIsFirstLine => (BinaryPrimitives.ReadUInt32LittleEndian(_record[UsdtEventLayout.TruncatedOffset..]) & (1u << UsdtEventLayout.FirstLineBit)) != 0;

    /// <summary>The string's bytes were sent in an earlier record: only its address and fingerprint are here.</summary>
    public bool IsInterned(int stringIndex) => RawLength(stringIndex) == UsdtEventLayout.InternedLength;

    /// <summary>The hash that, with the address and length, identifies the string; 0 when it is not interned.</summary>
    public ulong Fingerprint(int stringIndex) => BinaryPrimitives.ReadUInt64LittleEndian(_record[_layout.FingerprintOffset(stringIndex)..]);

    /// <summary>How string <paramref name="stringIndex"/>'s bytes are encoded in the record.</summary>
    public StringEncoding Encoding(int stringIndex) =>
        UsdtEventLayout.EncodingOf(BinaryPrimitives.ReadUInt32LittleEndian(_record[UsdtEventLayout.TruncatedOffset..]), stringIndex);

    /// <summary>
    /// The bytes of string <paramref name="stringIndex"/> as UTF-8 where the record holds another encoding (else as the
    /// probe gave them, not necessarily UTF-8); empty when interned.
    /// </summary>
    public ReadOnlySpan<byte> StringBytes(int stringIndex)
    {
        var start = _layout.StringsOffset;
        for (var j = 0; j < stringIndex; j++) start += Length(j);
        var length = Length(stringIndex);
        if (start + length > _record.Length) throw new UsdtException("event record string runs past the record");
        var bytes = _record.Slice(start, length);
        return Encoding(stringIndex) is var encoding && encoding == StringEncoding.Utf8 ? bytes : StringTranscoder.ToUtf8(encoding, bytes);
    }

    private int RawLength(int stringIndex) => BinaryPrimitives.ReadUInt16LittleEndian(_record[_layout.LengthOffset(stringIndex)..]);

    private int Length(int stringIndex) => IsInterned(stringIndex) ? 0 : RawLength(stringIndex);
}
