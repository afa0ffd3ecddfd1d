namespace Pyprobe.Python.Stacks;

/// <summary>
/// Decodes a code object's line table in user space: the line of the instruction at a byte offset
/// into the bytecode. Shared by dump and the sampling profiler.
/// </summary>
public static class LineTable
{
    /// <summary>The line of the instruction starting at <paramref name="byteOffset"/> (bytes from the bytecode start), or -1 when it has none.</summary>
    public static int LineOf(LineTableFormat format, ReadOnlySpan<byte> table, int firstLineNo, int byteOffset) => format switch
    {
        LineTableFormat.Lnotab => FromLnotab(table, firstLineNo, byteOffset),
        LineTableFormat.LineTable310 => FromLineTable310(table, firstLineNo, byteOffset),
        _ => FromLocations(table, firstLineNo, byteOffset / 2),
    };

    // 3.8–3.9 co_lnotab: pairs (bytecode increment, signed line increment); the line applies from the address reached.
    private static int FromLnotab(ReadOnlySpan<byte> table, int line, int target)
    {
        int address = 0;
        for (int i = 0; i + 1 < table.Length; i += 2)
        {
            address += table[i];
            if (address > target) break;
            line += (sbyte)table[i + 1];
        }
        return line;
    }

    // 3.10 co_linetable (PEP 626): pairs (byte length of the range, signed line delta; -128 = no line).
    private static int FromLineTable310(ReadOnlySpan<byte> table, int line, int target)
    {
        int start = 0;
        for (int i = 0; i + 1 < table.Length; i += 2)
        {
            int end = start + table[i];
            sbyte delta = (sbyte)table[i + 1];
            int rangeLine = -1;
            if (delta != -128) { line += delta; rangeLine = line; }
            if (start <= target && target < end) return rangeLine;
            start = end;
        }
        return -1;
    }

    // 3.11+ location table: entries of 1–8 code units; the first byte is 1 CCCC LLL (code, length-1).
    private static int FromLocations(ReadOnlySpan<byte> table, int line, int targetUnit)
    {
        int i = 0, unit = 0;
        while (i < table.Length)
        {
            byte first = table[i++];
            if ((first & 0x80) == 0) return -1; // out of sync: not an entry start
            int code = (first >> 3) & 15, length = (first & 7) + 1;
            int entryLine;
            switch (code)
            {
                case 15: entryLine = -1; break;                                 // no location
                case 14:                                                         // long form
                    line += SignedVarint(table, ref i); entryLine = line;
                    Varint(table, ref i); Varint(table, ref i); Varint(table, ref i);
                    break;
                case 13: line += SignedVarint(table, ref i); entryLine = line; break;  // no column
                case 10 or 11 or 12: line += code - 10; entryLine = line; i += 2; break;  // one line, two column bytes
                default: entryLine = line; i += 1; break;                        // short form: same line, one column byte
            }
            if (targetUnit < unit + length) return entryLine;
            unit += length;
        }
        return -1;
    }

    private static int Varint(ReadOnlySpan<byte> table, ref int i)
    {
        int value = 0, shift = 0;
        while (i < table.Length)
        {
            byte b = table[i++];
            value |= (b & 63) << shift;
            shift += 6;
            if ((b & 64) == 0) break;
        }
        return value;
    }

    private static int SignedVarint(ReadOnlySpan<byte> table, ref int i)
    {
        int v = Varint(table, ref i);
        return (v & 1) != 0 ? -(v >> 1) : v >> 1;
    }
}
