using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// Where the interesting fields of a (well-formed) ELF64 file are, so mutations can aim at them:
/// header fields, every section and program header, and the notes inside .note.stapsdt. Read
/// directly, independent of the code under test.
/// </summary>
public sealed class ElfLayout
{
    public sealed record Section(int Index, string Name, uint Type, long HeaderOffset, long FileOffset, long Size);

    public required long PhOff { get; init; }
    public required int PhNum { get; init; }
    public required long ShOff { get; init; }
    public required int ShNum { get; init; }
    public required IReadOnlyList<Section> Sections { get; init; }
    /// <summary>Offsets (in the file) of each note inside .note.stapsdt.</summary>
    public required IReadOnlyList<long> NoteStarts { get; init; }
    public Section? NoteSection => Sections.FirstOrDefault(s => s.Name == ".note.stapsdt");

    public Section? Find(string name) => Sections.FirstOrDefault(s => s.Name == name);

    public static ElfLayout Read(byte[] f)
    {
        long phoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(32));
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(40));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(56));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(60));
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(62));
        long Hdr(int i) => shoff + 64L * i;
        long strOff = (long)BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan((int)Hdr(shstrndx) + 24));
        var sections = new List<Section>();
        for (int i = 0; i < shnum; i++)
        {
            var h = f.AsSpan((int)Hdr(i));
            int nameOff = (int)BinaryPrimitives.ReadUInt32LittleEndian(h);
            var nameBytes = f.AsSpan((int)strOff + nameOff);
            string name = Encoding.ASCII.GetString(nameBytes[..nameBytes.IndexOf((byte)0)]);
            sections.Add(new Section(i, name, BinaryPrimitives.ReadUInt32LittleEndian(h[4..]), Hdr(i),
                (long)BinaryPrimitives.ReadUInt64LittleEndian(h[24..]), (long)BinaryPrimitives.ReadUInt64LittleEndian(h[32..])));
        }
        var notes = new List<long>();
        if (sections.FirstOrDefault(s => s.Name == ".note.stapsdt") is { } ns)
        {
            long pos = ns.FileOffset;
            while (pos + 12 <= ns.FileOffset + ns.Size)
            {
                notes.Add(pos);
                uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan((int)pos));
                uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan((int)pos + 4));
                pos += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
            }
        }
        return new ElfLayout { PhOff = phoff, PhNum = phnum, ShOff = shoff, ShNum = shnum, Sections = sections, NoteStarts = notes };
    }
}
