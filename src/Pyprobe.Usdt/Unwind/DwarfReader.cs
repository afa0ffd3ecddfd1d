using System.Buffers.Binary;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// Reads the little-endian fields of .eh_frame in place: fixed-size integers, LEB128 numbers and the DW_EH_PE encoded
/// pointers of CIEs and FDEs. A read past the end throws <see cref="UnwindFormatException"/>, which the table turns into
/// "this CIE/FDE is unusable" rather than a crash on a malformed file.
/// </summary>
internal ref struct DwarfReader(ReadOnlySpan<byte> bytes, int position)
{
    private readonly ReadOnlySpan<byte> _bytes = bytes;

    public int Position { get; set; } = position;

    public readonly bool AtEnd(int end) => Position >= end;

    public byte U8() => Take(1)[0];
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public ulong Uleb()
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = U8();
            if (shift < 64) value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return value;
        }
    }

    public long Sleb()
    {
        long value = 0;
        var shift = 0;
        byte b;
        do
        {
            b = U8();
            if (shift < 64) value |= (long)(b & 0x7f) << shift;
            shift += 7;
        } while ((b & 0x80) != 0);
        if (shift < 64 && (b & 0x40) != 0) value |= -1L << shift;
        return value;
    }

    /// <summary>A NUL-terminated ASCII string (a CIE's augmentation).</summary>
    public string CString()
    {
        var rest = _bytes[Position..];
        var nul = rest.IndexOf((byte)0);
        if (nul < 0) throw new UnwindFormatException("unterminated string");
        Position += nul + 1;
        return System.Text.Encoding.ASCII.GetString(rest[..nul]);
    }

    public ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || Position > _bytes.Length - count) throw new UnwindFormatException("read past the end of .eh_frame");
        var taken = _bytes.Slice(Position, count);
        Position += count;
        return taken;
    }

    /// <summary>
    /// A pointer in DW_EH_PE <paramref name="encoding"/>: the low nibble is the format, bits 0x70 what it is relative to,
    /// 0x80 "the address of the pointer, not the pointer" (indirect, reported through <paramref name="indirect"/>: only
    /// a personality routine is ever encoded so, and nobody here calls it). Null for DW_EH_PE_omit or an encoding
    /// this reader does not know (funcrel outside an FDE, undefined formats).
    /// </summary>
    public ulong? Pointer(byte encoding, in PointerBases bases, out bool indirect)
    {
        indirect = (encoding & 0x80) != 0;
        if (encoding == 0xff) return null; // DW_EH_PE_omit
        var fieldAddress = bases.Section + (ulong)Position;
        if ((encoding & 0x70) == 0x50) // DW_EH_PE_aligned: the next 8-byte boundary of the section's address space
        {
            var misalignment = (int)(fieldAddress & 7);
            if (misalignment != 0) Take(8 - misalignment);
            fieldAddress = bases.Section + (ulong)Position;
        }
        ulong value = (encoding & 0x0f) switch
        {
            0x00 => U64(), // absptr (8 bytes on x86-64)
            0x01 => Uleb(),
            0x02 => U16(),
            0x03 => U32(),
            0x04 => U64(),
            0x09 => (ulong)Sleb(),
            0x0a => (ulong)(long)(short)U16(),
            0x0b => (ulong)(long)(int)U32(),
            0x0c => U64(),
            _ => throw new UnwindFormatException($"unknown pointer format 0x{encoding:x2}"),
        };
        return (encoding & 0x70) switch
        {
            0x00 or 0x50 => value,
            0x10 => fieldAddress + value, // pcrel: from the field itself
            0x20 => bases.Text is { } text ? text + value : null,
            0x30 => bases.Data is { } data ? data + value : null,
            0x40 => bases.Function is { } function ? function + value : null,
            _ => null,
        };
    }

    /// <summary>Only the size-and-sign part of an encoding: an FDE's address range is a length, not an address.</summary>
    public ulong Length(byte encoding) => (encoding & 0x0f) switch
    {
        0x00 or 0x04 or 0x0c => U64(),
        0x01 => Uleb(),
        0x02 or 0x0a => U16(),
        0x03 or 0x0b => U32(),
        0x09 => (ulong)Sleb(),
        _ => throw new UnwindFormatException($"unknown pointer format 0x{encoding:x2}"),
    };
}

/// <summary>
/// What DW_EH_PE-relative pointers are relative to: the link-time address of the section read (pcrel adds the field's
/// offset to it), of .text (textrel), of .got (datarel, as GDB and the x86-64 psABI take it for .eh_frame), and of the
/// FDE's function (funcrel, for LSDA pointers).
/// </summary>
internal readonly record struct PointerBases(ulong Section, ulong? Text, ulong? Data, ulong? Function = null);

/// <summary>A CIE or FDE that cannot be read as DWARF call frame information.</summary>
internal sealed class UnwindFormatException(string message) : Exception(message);
