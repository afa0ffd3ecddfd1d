using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// The smallest ELF64 x86-64 file with one stapsdt probe, for minimal regression inputs:
///   0x000 ELF header, 0x040 two PT_LOAD headers (text R-X at vaddr 0x401000 / file 0x1000,
///   data RW- at vaddr 0x403000 / file 0x2000, each 0x1000 in file and memory),
///   0x3000 .note.stapsdt, then .shstrtab and the section headers (null, .note.stapsdt, .shstrtab).
/// Offsets of the fields regression tests poke at are exposed as constants.
/// </summary>
public sealed class MiniElf
{
    public const ulong TextVaddr = 0x401000, DataVaddr = 0x403000;
    public const int TextPhdr = 0x40, DataPhdr = 0x40 + 56, NoteOffset = 0x3000;
    public const int P_filesz = 32, P_memsz = 40, P_offset = 8;

    public ulong Location { get; init; } = TextVaddr + 0x10;
    public ulong Semaphore { get; init; } = DataVaddr + 0x20;
    public string Arguments { get; init; } = "8@%rdi";

    public int ShOff { get; private set; }
    /// <summary>File offset of section header <paramref name="index"/> (1 = .note.stapsdt, 2 = .shstrtab).</summary>
    public int SectionHeader(int index) => ShOff + 64 * index;

    public byte[] Build()
    {
        var desc = new List<byte>();
        foreach (var v in new[] { Location, 0UL, Semaphore })
            desc.AddRange(BitConverter.GetBytes(v));
        desc.AddRange(Encoding.ASCII.GetBytes($"python\0gc__start\0{Arguments}\0"));
        var note = new List<byte>();
        note.AddRange(BitConverter.GetBytes(8u));
        note.AddRange(BitConverter.GetBytes((uint)desc.Count));
        note.AddRange(BitConverter.GetBytes(3u));
        note.AddRange("stapsdt\0"u8.ToArray());
        note.AddRange(desc);
        while (note.Count % 4 != 0) note.Add(0);

        var shstr = "\0.note.stapsdt\0.shstrtab\0"u8.ToArray();
        int shstrOff = NoteOffset + note.Count;
        ShOff = (shstrOff + shstr.Length + 7) & ~7;
        var f = new byte[ShOff + 3 * 64];
        var s = f.AsSpan();
        "\u007fELF"u8.CopyTo(s);
        s[4] = 2; s[5] = 1; s[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);   // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 62);  // x86-64
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], TextVaddr);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], 0x40);
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], (ulong)ShOff);
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], 56);
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(s[58..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(s[60..], 3);
        BinaryPrimitives.WriteUInt16LittleEndian(s[62..], 2);
        foreach (var (at, flags, off, vaddr) in new[] { (TextPhdr, 5u, 0x1000UL, TextVaddr), (DataPhdr, 6u, 0x2000UL, DataVaddr) })
        {
            var p = s[at..];
            BinaryPrimitives.WriteUInt32LittleEndian(p, 1);
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], flags);
            BinaryPrimitives.WriteUInt64LittleEndian(p[8..], off);
            BinaryPrimitives.WriteUInt64LittleEndian(p[16..], vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[24..], vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[32..], 0x1000);
            BinaryPrimitives.WriteUInt64LittleEndian(p[40..], 0x1000);
            BinaryPrimitives.WriteUInt64LittleEndian(p[48..], 0x1000);
        }
        note.ToArray().CopyTo(f, NoteOffset);
        shstr.CopyTo(f, shstrOff);
        void Shdr(int i, uint name, uint type, int off, int size)
        {
            var h = f.AsSpan(ShOff + 64 * i);
            BinaryPrimitives.WriteUInt32LittleEndian(h, name);
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], type);
            BinaryPrimitives.WriteUInt64LittleEndian(h[24..], (ulong)off);
            BinaryPrimitives.WriteUInt64LittleEndian(h[32..], (ulong)size);
            BinaryPrimitives.WriteUInt64LittleEndian(h[48..], 1);
        }
        Shdr(1, 1, 7, NoteOffset, note.Count);      // .note.stapsdt SHT_NOTE
        Shdr(2, 15, 3, shstrOff, shstr.Length);      // .shstrtab SHT_STRTAB
        return f;
    }
}
