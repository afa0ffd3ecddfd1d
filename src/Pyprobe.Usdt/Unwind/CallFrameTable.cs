using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The call frame information of one ELF file's .eh_frame: every FDE (function range) sorted by start address
/// (link-time), each with its CIE. Parsed once; <see cref="TryFindRow"/> is a binary search plus running one FDE's
/// instructions up to the address (tens of bytes), so it needs no cache to serve thousands of unwinds a second.
/// </summary>
public sealed class CallFrameTable
{
    private readonly byte[] _frame;
    private readonly PointerBases _bases;
    private readonly FrameDescription[] _descriptions;

    /// <summary>One FDE: code [Start, End), its instructions at [InstructionsStart, InstructionsEnd) of .eh_frame.</summary>
    private readonly record struct FrameDescription(ulong Start, ulong End, int InstructionsStart, int InstructionsEnd, CommonInformation Cie);

    private CallFrameTable(byte[] frame, PointerBases bases, FrameDescription[] descriptions, int skipped)
    {
        _frame = frame;
        _bases = bases;
        _descriptions = descriptions;
        SkippedEntries = skipped;
    }

    /// <summary>How many FDEs the table holds.</summary>
    public int Count => _descriptions.Length;

    /// <summary>CIEs and FDEs that could not be read (unknown encodings, truncation) and were left out.</summary>
    public int SkippedEntries { get; }

    // One table per image, as long as the image lives: every process mapping a libc shares its table.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ElfImage, Loaded> ByImage = new();

    private sealed class Loaded(CallFrameTable? table)
    {
        public CallFrameTable? Table { get; } = table;
    }

    /// <summary>
    /// <see cref="Load"/>, once per image; null when it has no .eh_frame or the section cannot be read (an unwind then
    /// stops in that file, which is all a reader of samples can do about it).
    /// </summary>
    public static CallFrameTable? For(ElfImage elf) => ByImage.GetValue(elf, image =>
    {
        try
        {
            return new Loaded(Load(image));
        }
        catch (UsdtException)
        {
            return new Loaded(null);
        }
    }).Table;

    /// <summary>The table of <paramref name="elf"/>'s .eh_frame, or null when it has none.</summary>
    public static CallFrameTable? Load(ElfImage elf)
    {
        if (elf.FindSection(".eh_frame") is not { HasFileData: true, Size: > 0 } section) return null;
        var bases = new PointerBases(section.Address, elf.FindSection(".text")?.Address, elf.FindSection(".got")?.Address);
        var frame = elf.ReadSection(section);
        var (descriptions, skipped) = Parse(frame, bases);
        return new CallFrameTable(frame, bases, descriptions, skipped);
    }

    /// <summary>
    /// The rules in force at link-time address <paramref name="vaddr"/>: false when no FDE covers it (or its
    /// instructions are malformed).
    /// </summary>
    public bool TryFindRow(ulong vaddr, out UnwindRow row)
    {
        row = default;
        var index = LastStartingAtOrBefore(vaddr);
        if (index < 0) return false;
        var description = _descriptions[index];
        if (vaddr >= description.End) return false;
        var cie = description.Cie;
        var state = cie.Initial;
        var rowEnd = description.End;
        try
        {
            CallFrameProgram.Run(_frame, description.InstructionsStart, description.InstructionsEnd, cie, _bases with { Function = description.Start },
                description.Start, vaddr, ref state, out var rowStart, ref rowEnd);
            row = new UnwindRow(rowStart, Math.Min(rowEnd, description.End), state.Cfa, state.CfaRegister, state.CfaOffset, state.PltThreshold,
                state.ReturnAddress, state.Rbp, cie.IsSignalFrame);
            return true;
        }
        catch (UnwindFormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// The code range of the FDE that covers <paramref name="vaddr"/> (a function, or a part gcc split off one), or null:
    /// what names a function a stripped file has no symbol for, the same for every address in it.
    /// </summary>
    public (ulong Start, ulong End)? TryFindFunction(ulong vaddr)
    {
        var index = LastStartingAtOrBefore(vaddr);
        return index >= 0 && vaddr < _descriptions[index].End ? (_descriptions[index].Start, _descriptions[index].End) : null;
    }

    private int LastStartingAtOrBefore(ulong vaddr)
    {
        int lo = 0, hi = _descriptions.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            if (_descriptions[mid].Start <= vaddr) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>Walks the length-prefixed entries of .eh_frame (ending at a zero length or the section's end).</summary>
    private static (FrameDescription[] Descriptions, int Skipped) Parse(byte[] frame, PointerBases bases)
    {
        var cies = new Dictionary<int, CommonInformation?>();
        var descriptions = new List<FrameDescription>();
        var skipped = 0;
        var at = 0;
        while (at + 4 <= frame.Length)
        {
            var reader = new DwarfReader(frame, at);
            ulong length = reader.U32();
            if (length == 0) break; // the terminator ld appends
            if (length == 0xffffffff)
            {
                if (reader.Position + 8 > frame.Length) break;
                length = reader.U64();
            }
            var bodyStart = reader.Position;
            if (length > (ulong)(frame.Length - bodyStart)) break;
            var end = bodyStart + (int)length;
            var idField = reader.Position;
            var id = reader.U32();
            if (id == 0)
            {
                cies[at] = ReadCie(frame, reader.Position, end, bases);
                if (cies[at] is null) skipped++;
            }
            else
            {
                var cieOffset = idField - (long)id; // relative to the CIE pointer field itself
                if (cieOffset < 0 || !CieAt(frame, (int)cieOffset, bases, cies, out var cie) || cie is null)
                    skipped++;
                else if (ReadFde(frame, reader.Position, end, cie, bases) is { } description)
                    descriptions.Add(description);
                else
                    skipped++;
            }
            at = end;
        }
        var sorted = descriptions.Where(d => d.End > d.Start).ToArray();
        Array.Sort(sorted, (a, b) => a.Start.CompareTo(b.Start));
        return (sorted, skipped);
    }

    /// <summary>The CIE at an offset, read now if an FDE points back to one not yet seen (or not at an entry start).</summary>
    private static bool CieAt(byte[] frame, int offset, PointerBases bases, Dictionary<int, CommonInformation?> cies, out CommonInformation? cie)
    {
        if (cies.TryGetValue(offset, out cie)) return true;
        try
        {
            var reader = new DwarfReader(frame, offset);
            var length = reader.U32();
            if (length is 0 or 0xffffffff || length > (uint)(frame.Length - reader.Position)) return false;
            var end = reader.Position + (int)length;
            if (reader.U32() != 0) return false;
            cie = cies[offset] = ReadCie(frame, reader.Position, end, bases);
            return true;
        }
        catch (UnwindFormatException)
        {
            return false;
        }
    }

    /// <summary>A CIE body after its id: version, augmentation, alignment factors, return column, augmentation data, initial instructions.</summary>
    private static CommonInformation? ReadCie(byte[] frame, int position, int end, PointerBases bases)
    {
        try
        {
            var reader = new DwarfReader(frame, position);
            var version = reader.U8();
            if (version is not (1 or 3)) return null;
            var augmentation = reader.CString();
            if (augmentation.Contains("eh", StringComparison.Ordinal)) reader.U64(); // old gcc's eh_ptr
            var codeAlignment = reader.Uleb();
            var dataAlignment = reader.Sleb();
            var returnColumn = version == 1 ? reader.U8() : (int)reader.Uleb();
            byte encoding = 0; // absptr unless 'R' says otherwise
            var signal = false;
            if (augmentation.StartsWith('z'))
            {
                var dataLength = (int)Math.Min(reader.Uleb(), (ulong)(end - reader.Position));
                var dataEnd = reader.Position + dataLength;
                foreach (var letter in augmentation.AsSpan(1))
                {
                    if (letter == 'R') encoding = reader.U8();
                    else if (letter == 'L') reader.U8(); // the LSDA pointer's encoding: the LSDA itself is in each FDE's data, skipped
                    else if (letter == 'P') reader.Pointer(reader.U8(), bases, out _); // the personality routine: not needed to unwind
                    else if (letter == 'S') signal = true;
                    else if (letter != 'B') break; // unknown letters (B, AArch64's key, has no data): the length skips the rest
                }
                reader.Position = dataEnd; // the letters after an unknown one are not interpreted
            }
            else if (augmentation.Length > 0 && augmentation != "eh")
            {
                return null; // without 'z' an unknown augmentation's data has no known size
            }
            var before = new CallFrameState
            {
                Cfa = CfaKind.Expression, // no CFA rule until the CIE gives one
                ReturnAddress = CallFrameProgram.Unmentioned(returnColumn),
                Rbp = CallFrameProgram.Unmentioned(DwarfRegister.Rbp),
            };
            var provisional = new CommonInformation(codeAlignment, dataAlignment, returnColumn, encoding, signal, augmentation.StartsWith('z'), before);
            var state = before;
            var ignoredEnd = ulong.MaxValue;
            CallFrameProgram.Run(frame, reader.Position, end, provisional, bases, 0, ulong.MaxValue, ref state, out _, ref ignoredEnd);
            return provisional with { Initial = state };
        }
        catch (UnwindFormatException)
        {
            return null;
        }
    }

    /// <summary>An FDE body after its CIE pointer: initial location, address range, augmentation data, instructions.</summary>
    private static FrameDescription? ReadFde(byte[] frame, int position, int end, CommonInformation cie, PointerBases bases)
    {
        try
        {
            var reader = new DwarfReader(frame, position);
            var start = reader.Pointer(cie.PointerEncoding, bases, out var indirect);
            if (start is null || indirect) return null;
            var range = reader.Length(cie.PointerEncoding);
            if (cie.HasAugmentationData) reader.Position += (int)Math.Min(reader.Uleb(), (ulong)(end - reader.Position + 1));
            if (reader.Position > end) return null;
            return new FrameDescription(start.Value, start.Value + range, reader.Position, end, cie);
        }
        catch (UnwindFormatException)
        {
            return null;
        }
    }
}
