using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Usdt.Elf;

/// <summary>What <see cref="ElfHeaderReader"/> reads: the file kind, PT_LOAD segments and section headers.</summary>
/// <param name="Links">sh_link of each section, by index (a symbol table's string table).</param>
internal sealed record ElfHeaders(ElfFileKind Kind, IReadOnlyList<ElfLoadSegment> Segments, IReadOnlyList<ElfSection> Sections, IReadOnlyList<uint> Links);

/// <summary>
/// Reads an ELF64 little-endian file's header, program headers and section headers (names from .shstrtab), and
/// nothing else. Written by hand rather than with an ELF library because the one pyprobe used parsed every section
/// at open, symbol tables included (tens of thousands of entries in a pyenv libpython, tens of milliseconds per
/// open, several opens per attach); pyprobe reads symbols only when it looks one up (<see cref="ElfSymbolReader"/>).
/// Every table's geometry is checked before it is read, so reads stay inside the file.
/// </summary>
internal static class ElfHeaderReader
{
    private const uint PT_LOAD = 1, PF_X = 1, PF_W = 2, PF_R = 4;
    private const ulong SHF_ALLOC = 2;
    private const ushort ET_EXEC = 2, SHN_XINDEX = 0xffff;

    private const int HeaderSize = 64, ProgramHeaderSize = 56, SectionHeaderSize = 64;
    private const uint SHT_NOBITS = 8;

    /// <summary>
    /// Reads the headers, bounds-checking the program and section header tables and every section's file range as it
    /// goes: reads are sized by e_*entsize and sh_size, so a corrupt value would otherwise become a read past the end
    /// of the file (or an allocation sized by the field) that surfaces only as an anonymous EndOfStream/Overflow
    /// message; this way every such file gets a message naming the bad table or section.
    /// </summary>
    public static ElfHeaders Read(string path, Stream stream)
    {
        var length = stream.Length;
        if (length < HeaderSize)
            throw new UsdtException($"{path}: truncated ELF header ({length} bytes).");
        Span<byte> header = stackalloc byte[HeaderSize];
        stream.Position = 0;
        stream.ReadExactly(header);
        var type = BinaryPrimitives.ReadUInt16LittleEndian(header[16..]);
        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(header[32..]);
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(header[40..]);
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[54..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[56..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[58..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(header[60..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(header[62..]);

        if (phnum > 0)
        {
            if (phentsize != ProgramHeaderSize)
                throw new UsdtException($"{path}: malformed ELF header: e_phentsize is {phentsize}, expected {ProgramHeaderSize}.");
            if (!FitsInFile(phoff, (ulong)phnum * ProgramHeaderSize, length))
                throw new UsdtException($"{path}: program header table (e_phoff 0x{phoff:x}, {phnum} entries) lies beyond the end of the file (truncated file?).");
        }
        byte[] table = [];
        if (shoff != 0 && shnum != 0)
        {
            if (shentsize != SectionHeaderSize)
                throw new UsdtException($"{path}: malformed ELF header: e_shentsize is {shentsize}, expected {SectionHeaderSize}.");
            if (!FitsInFile(shoff, (ulong)shnum * SectionHeaderSize, length))
                throw new UsdtException($"{path}: section header table (e_shoff 0x{shoff:x}, {shnum} entries) lies beyond the end of the file (truncated file?).");
            table = ReadAt(stream, shoff, shnum * SectionHeaderSize);
            for (var i = 0; i < shnum; i++)
            {
                var sh = table.AsSpan(i * SectionHeaderSize, SectionHeaderSize);
                var offset = BinaryPrimitives.ReadUInt64LittleEndian(sh[24..]);
                var size = BinaryPrimitives.ReadUInt64LittleEndian(sh[32..]);
                if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != SHT_NOBITS && size > 0 && !FitsInFile(offset, size, length))
                    throw new UsdtException($"{path}: section {i} (sh_offset 0x{offset:x}, sh_size 0x{size:x}) lies beyond the end of the file (truncated file?).");
            }
        }

        var segments = new List<ElfLoadSegment>();
        var programHeaders = ReadAt(stream, phoff, phnum * ProgramHeaderSize);
        for (var i = 0; i < phnum; i++)
        {
            var ph = programHeaders.AsSpan(i * ProgramHeaderSize, ProgramHeaderSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != PT_LOAD) continue;
            var flags = BinaryPrimitives.ReadUInt32LittleEndian(ph[4..]);
            segments.Add(new ElfLoadSegment(
                VirtualAddress: BinaryPrimitives.ReadUInt64LittleEndian(ph[16..]),
                MemorySize: BinaryPrimitives.ReadUInt64LittleEndian(ph[40..]),
                FileOffset: BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]),
                FileSize: BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]),
                Readable: (flags & PF_R) != 0, Writable: (flags & PF_W) != 0, Executable: (flags & PF_X) != 0));
        }

        var sections = new List<ElfSection>();
        var links = new List<uint>();
        if (table.Length != 0)
        {
            // More sections than e_shstrndx can name: the real index is section 0's sh_link.
            if (shstrndx == SHN_XINDEX) shstrndx = (int)BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(40));
            byte[] names = [];
            if (shstrndx < shnum)
            {
                var namesHeader = table.AsSpan(shstrndx * SectionHeaderSize, SectionHeaderSize);
                names = ReadAt(stream, BinaryPrimitives.ReadUInt64LittleEndian(namesHeader[24..]), checked((int)BinaryPrimitives.ReadUInt64LittleEndian(namesHeader[32..])));
            }
            for (var i = 0; i < shnum; i++)
            {
                var sh = table.AsSpan(i * SectionHeaderSize, SectionHeaderSize);
                sections.Add(new ElfSection(
                    Name: StringAt(names, BinaryPrimitives.ReadUInt32LittleEndian(sh)),
                    Type: BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]),
                    Address: BinaryPrimitives.ReadUInt64LittleEndian(sh[16..]),
                    FileOffset: BinaryPrimitives.ReadUInt64LittleEndian(sh[24..]),
                    Size: BinaryPrimitives.ReadUInt64LittleEndian(sh[32..]),
                    Allocated: (BinaryPrimitives.ReadUInt64LittleEndian(sh[8..]) & SHF_ALLOC) != 0));
                links.Add(BinaryPrimitives.ReadUInt32LittleEndian(sh[40..]));
            }
        }
        return new ElfHeaders(type == ET_EXEC ? ElfFileKind.Executable : ElfFileKind.SharedObject, segments, sections, links);
    }

    /// <summary>Whether <paramref name="size"/> bytes at <paramref name="offset"/> lie inside a file of <paramref name="length"/> bytes (no overflow).</summary>
    public static bool FitsInFile(ulong offset, ulong size, long length) =>
        offset <= (ulong)length && size <= (ulong)length - offset;

    /// <summary>The NUL-terminated string at <paramref name="offset"/> of a string table ("" when outside it).</summary>
    public static string StringAt(ReadOnlySpan<byte> table, uint offset)
    {
        if (offset >= (uint)table.Length) return "";
        var rest = table[(int)offset..];
        var end = rest.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
    }

    private static byte[] ReadAt(Stream stream, ulong offset, int count)
    {
        var bytes = new byte[count];
        if (count == 0) return bytes;
        stream.Position = (long)offset;
        stream.ReadExactly(bytes);
        return bytes;
    }
}
