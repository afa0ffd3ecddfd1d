using System.Buffers.Binary;

namespace Pyprobe.Usdt.Elf;

/// <summary>
/// Reads the named symbols of .symtab then .dynsym (Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value,
/// st_size; 24 bytes), each name from the string table the section links to.
/// </summary>
internal static class ElfSymbolReader
{
    private const int STT_OBJECT = 1, STT_FUNC = 2, STB_GLOBAL = 1, STB_WEAK = 2;

    public const int EntrySize = 24;

    public static List<ElfSymbol> Read(ElfImage elf, IReadOnlyList<uint> links)
    {
        var symbols = new List<ElfSymbol>();
        foreach (var (index, kind) in Tables(elf, links))
            Add(symbols, elf.SectionBytes(elf.Sections[index]), elf.SectionBytes(elf.Sections[(int)links[index]]), kind);
        return symbols;
    }

    /// <summary>The symbol tables present with a usable string table: .symtab first (it has the local symbols that static variables referenced as sym(%rip) need), then .dynsym.</summary>
    public static IEnumerable<(int Index, ElfSymbolTableKind Kind)> Tables(ElfImage elf, IReadOnlyList<uint> links)
    {
        foreach (var (name, kind) in new[] { (".symtab", ElfSymbolTableKind.Symtab), (".dynsym", ElfSymbolTableKind.Dynsym) })
        {
            var index = IndexOf(elf.Sections, name);
            if (index < 0 || !elf.Sections[index].HasFileData) continue;
            var link = (int)links[index];
            if (link <= 0 || link >= elf.Sections.Count) continue;
            yield return (index, kind);
        }
    }

    /// <summary>One Elf64_Sym entry, named <paramref name="name"/> (read from its string table by the caller).</summary>
    public static ElfSymbol Decode(ReadOnlySpan<byte> entry, string name, ElfSymbolTableKind kind)
    {
        int binding = entry[4] >> 4;
        return new ElfSymbol(name, Value(entry), Size(entry),
            IsObject: Type(entry) == STT_OBJECT, IsFunction: IsFunction(entry),
            IsGlobal: binding is STB_GLOBAL or STB_WEAK,
            IsDefined: IsDefined(entry),
            Table: kind);
    }

    // An entry's fields, read in place (ElfSymbolIndex reads them without making a symbol).
    public static ulong Value(ReadOnlySpan<byte> entry) => BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]);
    public static ulong Size(ReadOnlySpan<byte> entry) => BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]);
    public static bool IsFunction(ReadOnlySpan<byte> entry) => Type(entry) == STT_FUNC;
    public static bool IsDefined(ReadOnlySpan<byte> entry) => BinaryPrimitives.ReadUInt16LittleEndian(entry[6..]) != 0; // SHN_UNDEF
    private static int Type(ReadOnlySpan<byte> entry) => entry[4] & 0xf;

    private static void Add(List<ElfSymbol> symbols, ReadOnlySpan<byte> entries, ReadOnlySpan<byte> strings, ElfSymbolTableKind kind)
    {
        for (var at = 0; at + EntrySize <= entries.Length; at += EntrySize)
        {
            var entry = entries.Slice(at, EntrySize);
            var nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry);
            if (nameOffset == 0) continue;
            var name = ElfHeaderReader.StringAt(strings, nameOffset);
            if (name.Length == 0) continue;
            symbols.Add(Decode(entry, name, kind));
        }
    }

    private static int IndexOf(IReadOnlyList<ElfSection> sections, string name)
    {
        for (var i = 0; i < sections.Count; i++)
            if (sections[i].Name == name) return i;
        return -1;
    }
}
