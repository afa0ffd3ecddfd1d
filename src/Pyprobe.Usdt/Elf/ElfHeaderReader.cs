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
/// The tables' geometry was checked before (<see cref="ElfImage"/>), so reads stay inside the file.
/// </summary>
internal static class ElfHeaderReader
{
    private const uint PT_LOAD = 1, PF_X = 1, PF_W = 2, PF_R = 4;
    private const ulong SHF_ALLOC = 2;
    private const ushort ET_EXEC = 2, SHN_XINDEX = 0xffff;

    public static ElfHeaders Read(Stream stream)
    {
        Span<byte> header = stackalloc byte[64];
        stream.Position = 0;
        stream.ReadExactly(header);
        var type = BinaryPrimitives.ReadUInt16LittleEndian(header[16..]);
        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(header[32..]);
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(header[40..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[56..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(header[60..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(header[62..]);

        var segments = new List<ElfLoadSegment>();
        var programHeaders = ReadAt(stream, phoff, phnum * 56);
        for (var i = 0; i < phnum; i++)
        {
            var ph = programHeaders.AsSpan(i * 56, 56);
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
        if (shoff != 0 && shnum != 0)
        {
            var table = ReadAt(stream, shoff, shnum * 64);
            // More sections than e_shstrndx can name: the real index is section 0's sh_link.
            if (shstrndx == SHN_XINDEX) shstrndx = (int)BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(40));
            byte[] names = [];
            if (shstrndx < shnum)
            {
                var namesHeader = table.AsSpan(shstrndx * 64, 64);
                names = ReadAt(stream, BinaryPrimitives.ReadUInt64LittleEndian(namesHeader[24..]), checked((int)BinaryPrimitives.ReadUInt64LittleEndian(namesHeader[32..])));
            }
            for (var i = 0; i < shnum; i++)
            {
                var sh = table.AsSpan(i * 64, 64);
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
