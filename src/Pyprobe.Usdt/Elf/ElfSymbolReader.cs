using System.Buffers.Binary;

namespace Pyprobe.Usdt.Elf;

/// <summary>
/// Reads the named symbols of .symtab then .dynsym (Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value,
/// st_size; 24 bytes), each name from the string table the section links to.
/// </summary>
internal static class ElfSymbolReader
{
    private const int EntrySize = 24;
    private const int STT_OBJECT = 1, STT_FUNC = 2, STB_GLOBAL = 1, STB_WEAK = 2;

    public static List<ElfSymbol> Read(ElfImage elf, IReadOnlyList<uint> links)
    {
        var symbols = new List<ElfSymbol>();
        // .symtab first: it has local symbols (static variables referenced as sym(%rip)).
        foreach (var (name, kind) in new[] { (".symtab", ElfSymbolTableKind.Symtab), (".dynsym", ElfSymbolTableKind.Dynsym) })
        {
            var index = IndexOf(elf.Sections, name);
            if (index < 0 || !elf.Sections[index].HasFileData) continue;
            var link = (int)links[index];
            if (link <= 0 || link >= elf.Sections.Count) continue;
            var strings = elf.ReadSection(elf.Sections[link]);
            elf.ScanSection(elf.Sections[index], entries => Add(symbols, entries, strings, kind));
        }
        return symbols;
    }

    private static int Add(List<ElfSymbol> symbols, ReadOnlySpan<byte> entries, ReadOnlySpan<byte> strings, ElfSymbolTableKind kind)
    {
        for (var at = 0; at + EntrySize <= entries.Length; at += EntrySize)
        {
            var entry = entries.Slice(at, EntrySize);
            var nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry);
            if (nameOffset == 0) continue;
            var name = ElfHeaderReader.StringAt(strings, nameOffset);
            if (name.Length == 0) continue;
            int type = entry[4] & 0xf, binding = entry[4] >> 4;
            symbols.Add(new ElfSymbol(name,
                Value: BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]),
                Size: BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]),
                IsObject: type == STT_OBJECT, IsFunction: type == STT_FUNC,
                IsGlobal: binding is STB_GLOBAL or STB_WEAK,
                IsDefined: BinaryPrimitives.ReadUInt16LittleEndian(entry[6..]) != 0, // SHN_UNDEF
                Table: kind));
        }
        return symbols.Count;
    }

    private static int IndexOf(IReadOnlyList<ElfSection> sections, string name)
    {
        for (var i = 0; i < sections.Count; i++)
            if (sections[i].Name == name) return i;
        return -1;
    }
}
