using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Usdt.Elf;

/// <summary>
/// Finds symbols by name in .symtab and .dynsym without turning every entry into a string: an open-addressing table of
/// entry numbers keyed by a hash of the name's bytes, built in one pass over the raw tables. An attach looks up a dozen
/// names in a file that has thousands (a pyenv libpython's .symtab: tens of thousands); allocating a string, a record and
/// a dictionary slot for each was most of the lookup's cost, and on a VM where every fresh page exits to the host, a
/// few milliseconds of every launch. Only the entries a lookup matches become <see cref="ElfSymbol"/>s.
/// </summary>
internal sealed class ElfSymbolIndex
{
    private readonly ElfImage _elf;
    private readonly Table[] _tables;
    // Entry ordinal + 1 (0: empty); ordinals number .symtab's entries first, then .dynsym's, as ElfSymbolReader orders them.
    // Null where the only table is a .dynsym with a GNU hash table: lookups go through that instead.
    private readonly int[]? _slots;
    private readonly ElfGnuHash? _dynamicHash;
    private readonly Dictionary<string, IReadOnlyList<ElfSymbol>> _found = new(StringComparer.Ordinal);

    // Where a table's entries and names lie in the file (read through the image's mapping, never copied).
    private sealed record Table(ElfSection Entries, ElfSection Strings, ElfSymbolTableKind Kind, int FirstOrdinal)
    {
        public int Count => (int)(Entries.Size / ElfSymbolReader.EntrySize);
    }

    private ElfSymbolIndex(ElfImage elf, Table[] tables, ElfGnuHash? dynamicHash)
    {
        _elf = elf;
        _tables = tables;
        _dynamicHash = dynamicHash;
        if (dynamicHash is not null) return;
        var total = tables.Sum(t => t.Count);
        // Filled a third to two thirds: a pyenv libpython's 17,500 entries take 32K slots (128 KB) rather than 64K, pages
        // fresh from the kernel that each cost a fault here.
        _slots = new int[(int)Math.Max(16, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(total + total / 2)))];
        var mask = _slots.Length - 1;
        foreach (var table in tables)
        {
            ReadOnlySpan<byte> entries = elf.SectionBytes(table.Entries), strings = elf.SectionBytes(table.Strings);
            for (var i = 0; i < table.Count; i++)
            {
                var name = NameBytes(entries, strings, i);
                if (name.IsEmpty) continue;
                var slot = (int)(Hash(name) & (uint)mask);
                while (_slots[slot] != 0) slot = (slot + 1) & mask;
                _slots[slot] = table.FirstOrdinal + i + 1;
            }
        }
    }

    /// <summary>Reads both tables' entries and names (each with the string table its sh_link names) and indexes them.</summary>
    /// <param name="dynamicHash">The file's <see cref="DynamicHash"/>: where there is one, lookups go through it and nothing is indexed.</param>
    public static ElfSymbolIndex Build(ElfImage elf, IReadOnlyList<uint> links, ElfGnuHash? dynamicHash)
    {
        var tables = new List<Table>();
        var ordinal = 0;
        foreach (var (index, kind) in ElfSymbolReader.Tables(elf, links))
        {
            var table = new Table(elf.Sections[index], elf.Sections[(int)links[index]], kind, ordinal);
            tables.Add(table);
            ordinal += table.Count;
        }
        return new ElfSymbolIndex(elf, [.. tables], dynamicHash);
    }

    /// <summary>
    /// The GNU hash table of a file whose only symbol table is .dynsym (a distribution's stripped interpreter), or null:
    /// indexing such a file read and hashed all of its names, ~1 ms of every attach to a Debian Python, for the dozen a
    /// launch looks up; through its hash table a lookup is a few reads.
    /// </summary>
    public static ElfGnuHash? DynamicHash(ElfImage elf, IReadOnlyList<uint> links) =>
        ElfSymbolReader.Tables(elf, links).ToList() is [{ Kind: ElfSymbolTableKind.Dynsym } only]
            ? ElfGnuHash.For(elf, links, only.Index, (int)(elf.Sections[only.Index].Size / ElfSymbolReader.EntrySize))
            : null;

    /// <summary>Every symbol named exactly <paramref name="name"/>, .symtab's before .dynsym's, each table in file order.</summary>
    public IReadOnlyList<ElfSymbol> Find(string name)
    {
        lock (_found)
        {
            if (_found.TryGetValue(name, out var known)) return known;
            var found = Lookup(Encoding.UTF8.GetBytes(name));
            _found[name] = found;
            return found;
        }
    }

    private List<ElfSymbol> Lookup(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty) return [];
        List<int>? ordinals = null;
        if (_dynamicHash is not null)
        {
            var table = _tables[0];
            ordinals = [];
            _dynamicHash.Find(_elf, name, table.Count, entry => NameBytes(_elf.SectionBytes(table.Entries), _elf.SectionBytes(table.Strings), entry), ordinals);
            if (ordinals.Count == 0) return [];
        }
        else
        {
            var slots = _slots!;
            var mask = slots.Length - 1;
            // Equal names hash alike, so all of them lie on this one probe run.
            for (var slot = (int)(Hash(name) & (uint)mask); slots[slot] != 0; slot = (slot + 1) & mask)
            {
                var ordinal = slots[slot] - 1;
                var (table, entry) = Locate(ordinal);
                if (NameBytes(_elf.SectionBytes(table.Entries), _elf.SectionBytes(table.Strings), entry).SequenceEqual(name)) (ordinals ??= []).Add(ordinal);
            }
        }
        if (ordinals is null) return [];
        ordinals.Sort();
        var text = Encoding.UTF8.GetString(name);
        var symbols = new List<ElfSymbol>(ordinals.Count);
        foreach (var ordinal in ordinals)
        {
            var (table, entry) = Locate(ordinal);
            symbols.Add(ElfSymbolReader.Decode(Entry(_elf.SectionBytes(table.Entries), entry), text, table.Kind));
        }
        return symbols;
    }

    /// <summary>
    /// The address ranges of every defined function with a size in either table, sorted and without repeats, except those
    /// whose name starts with <paramref name="excludedPrefix"/>; no names are decoded.
    /// </summary>
    public (ulong Start, ulong End)[] FunctionRanges(string excludedPrefix)
    {
        var prefix = Encoding.UTF8.GetBytes(excludedPrefix);
        var ranges = new List<(ulong Start, ulong End)>();
        foreach (var table in _tables)
        {
            ReadOnlySpan<byte> entries = _elf.SectionBytes(table.Entries), strings = _elf.SectionBytes(table.Strings);
            for (var i = 0; i < table.Count; i++)
            {
                var entry = Entry(entries, i);
                if (!ElfSymbolReader.IsFunction(entry) || !ElfSymbolReader.IsDefined(entry) || ElfSymbolReader.Size(entry) == 0) continue;
                var name = NameBytes(entries, strings, i);
                if (name.IsEmpty || name.StartsWith(prefix)) continue;
                var start = ElfSymbolReader.Value(entry);
                ranges.Add((start, start + ElfSymbolReader.Size(entry)));
            }
        }
        ranges.Sort();
        var distinct = new List<(ulong Start, ulong End)>(ranges.Count);
        foreach (var range in ranges)
            if (distinct.Count == 0 || distinct[^1] != range) distinct.Add(range);
        return [.. distinct];
    }

    private (Table Table, int Entry) Locate(int ordinal)
    {
        foreach (var table in _tables)
            if (ordinal < table.FirstOrdinal + table.Count) return (table, ordinal - table.FirstOrdinal);
        throw new ArgumentOutOfRangeException(nameof(ordinal));
    }

    private static ReadOnlySpan<byte> Entry(ReadOnlySpan<byte> entries, int entry) =>
        entries.Slice(entry * ElfSymbolReader.EntrySize, ElfSymbolReader.EntrySize);

    /// <summary>The entry's name up to its NUL; empty for no name or an offset outside the string table (as ElfSymbolReader skips them).</summary>
    private static ReadOnlySpan<byte> NameBytes(ReadOnlySpan<byte> entries, ReadOnlySpan<byte> strings, int entry)
    {
        var offset = BinaryPrimitives.ReadUInt32LittleEndian(Entry(entries, entry));
        if (offset == 0 || offset >= (uint)strings.Length) return [];
        var rest = strings[(int)offset..];
        var end = rest.IndexOf((byte)0);
        return end < 0 ? rest : rest[..end];
    }

    /// <summary>FNV-1a: short names, no seed needed (the table is private to this process).</summary>
    private static uint Hash(ReadOnlySpan<byte> name)
    {
        var hash = 2166136261u;
        foreach (var b in name) hash = (hash ^ b) * 16777619u;
        return hash;
    }
}
