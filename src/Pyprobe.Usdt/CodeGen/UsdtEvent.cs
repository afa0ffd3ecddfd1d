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

    /// <summary>The raw bytes of string <paramref name="stringIndex"/> (not necessarily UTF-8).</summary>
    public ReadOnlySpan<byte> StringBytes(int stringIndex)
    {
        var start = _layout.StringsOffset;
        for (var j = 0; j < stringIndex; j++) start += Length(j);
        var length = Length(stringIndex);
        if (start + length > _record.Length) throw new UsdtException("event record string runs past the record");
        return _record.Slice(start, length);
    }

    private int Length(int stringIndex) => BinaryPrimitives.ReadUInt16LittleEndian(_record[_layout.LengthOffset(stringIndex)..]);
}
