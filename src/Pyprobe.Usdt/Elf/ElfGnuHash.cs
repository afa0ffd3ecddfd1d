using System.Buffers.Binary;

namespace Pyprobe.Usdt.Elf;

/// <summary>
/// A .dynsym's GNU hash table (the <c>.gnu.hash</c> section the dynamic loader finds symbols with): a name's entries are
/// reached through a Bloom filter word, a bucket and a run of the chain, a few reads instead of an index over every
/// entry. The table covers the entries from its first hashed one on; those before it (a file's undefined imports) it
/// does not, and <see cref="Find"/> compares them one by one, so it finds what a scan of the whole table finds.
/// </summary>
internal sealed class ElfGnuHash
{
    private const uint SectionType = 0x6ffffff6; // SHT_GNU_HASH
    private const int HeaderBytes = 16, BloomWordBytes = 8; // an ELFCLASS64 file's Bloom words are 64-bit

    private readonly ElfSection _section;
    private readonly uint _bucketCount, _firstHashed, _bloomWords, _bloomShift;
    private uint[]? _unhashed;

    private ElfGnuHash(ElfSection section, uint bucketCount, uint firstHashed, uint bloomWords, uint bloomShift) =>
        (_section, _bucketCount, _firstHashed, _bloomWords, _bloomShift) = (section, bucketCount, firstHashed, bloomWords, bloomShift);

    /// <summary>The hash table of the symbol table in section <paramref name="symbolTable"/>; null if it has none or one that does not fit it.</summary>
    public static ElfGnuHash? For(ElfImage elf, IReadOnlyList<uint> links, int symbolTable, int entryCount)
    {
        for (var i = 0; i < elf.Sections.Count; i++)
        {
            var section = elf.Sections[i];
            if (section.Type != SectionType || links[i] != symbolTable || !section.HasFileData) continue;
            var bytes = elf.SectionBytes(section);
            if (bytes.Length < HeaderBytes) return null;
            var buckets = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
            var firstHashed = BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]);
            var bloomWords = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
            var bloomShift = BinaryPrimitives.ReadUInt32LittleEndian(bytes[12..]);
            // The loader masks the Bloom index, so the word count is a power of two; the chain has an entry per hashed symbol.
            var needed = HeaderBytes + (long)bloomWords * BloomWordBytes + 4L * buckets + 4L * Math.Max(0, entryCount - (long)firstHashed);
            if (buckets == 0 || bloomWords == 0 || (bloomWords & (bloomWords - 1)) != 0 || firstHashed > entryCount || needed > bytes.Length) return null;
            return new ElfGnuHash(section, buckets, firstHashed, bloomWords, bloomShift);
        }
        return null;
    }

    /// <summary>The dynamic loader's hash of a name (djb2: h × 33 + byte).</summary>
    public static uint Hash(ReadOnlySpan<byte> name)
    {
        var hash = 5381u;
        foreach (var b in name) hash = hash * 33 + b;
        return hash;
    }

    /// <summary>Adds to <paramref name="into"/>, in table order, the entry numbers whose name <paramref name="nameOf"/> gives as <paramref name="name"/>.</summary>
    public void Find(ElfImage elf, ReadOnlySpan<byte> name, int entryCount, NameOf nameOf, List<int> into)
    {
        var hash = Hash(name);
        // The entries before the table's first (hundreds of imports in an interpreter): their hashes are computed once,
        // and only an entry whose hash matches has its name compared.
        _unhashed ??= Enumerable.Range(0, (int)Math.Min(_firstHashed, (uint)entryCount)).Select(entry => Hash(nameOf(entry))).ToArray();
        for (var entry = 0; entry < _unhashed.Length; entry++)
            if (_unhashed[entry] == hash && nameOf(entry).SequenceEqual(name)) into.Add(entry);
        var table = elf.SectionBytes(_section);
        var bloom = table[HeaderBytes..];
        var wordAt = (int)((hash / 64) & (_bloomWords - 1)) * BloomWordBytes;
        var word = BinaryPrimitives.ReadUInt64LittleEndian(bloom[wordAt..]);
        var bits = (1UL << (int)(hash % 64)) | (1UL << (int)((hash >> (int)_bloomShift) % 64));
        if ((word & bits) != bits) return;
        var buckets = bloom[(int)(_bloomWords * BloomWordBytes)..];
        var chain = buckets[(int)(_bucketCount * 4)..];
        var at = BinaryPrimitives.ReadUInt32LittleEndian(buckets[(int)(hash % _bucketCount * 4)..]);
        if (at < _firstHashed) return;
        for (; at < entryCount; at++)
        {
            // A chain value is its entry's hash with the low bit marking the run's last entry.
            var chained = BinaryPrimitives.ReadUInt32LittleEndian(chain[(int)((at - _firstHashed) * 4)..]);
            if ((chained | 1) == (hash | 1) && nameOf((int)at).SequenceEqual(name)) into.Add((int)at);
            if ((chained & 1) != 0) break;
        }
    }

    /// <summary>An entry's name bytes.</summary>
    public delegate ReadOnlySpan<byte> NameOf(int entry);
}
