using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// Writes small but well-formed x86-64 ELF64 files for tests of odd cases no real binary here has
/// (prelink-shifted notes, many sites, sym(%rip) arguments, ambiguous symbols, .PyRuntime contents).
/// Layout is fixed, with deliberately different vaddr−offset deltas per segment so that any
/// "offset = vaddr − constant" shortcut would fail:
///   text   R-X  vaddr ImageBase+0x1000  file 0x1000  size 0x1000 (.text, .stapsdt.base at +0xf00)
///   data   RW-  vaddr ImageBase+0x3000  file 0x2000  size 0x1000 (.probes at +0, .data at +0x100, .PyRuntime at +0x800)
///   rodata R--  vaddr ImageBase+0x5000  file 0x3000  size 0x1000 (.rodata)
/// followed by non-allocated .note.stapsdt, .symtab, .strtab, .shstrtab and the section headers.
/// </summary>
public sealed class TestElfWriter
{
    public bool SharedObject { get; init; }
    public ulong ImageBase { get; init; } = 0x400000;

    public ulong TextAddress => ImageBase + 0x1000;
    public ulong StapsdtBaseAddress => TextAddress + 0xf00;
    public ulong ProbesAddress => ImageBase + 0x3000;
    public ulong DataAddress => ImageBase + 0x3100;
    public ulong PyRuntimeAddress => ImageBase + 0x3800;
    public ulong RodataAddress => ImageBase + 0x5000;

    public const ulong TextFileOffset = 0x1000;
    public const ulong DataFileOffset = 0x2000;
    public const ulong RodataFileOffset = 0x3000;

    public byte[]? PyRuntime { get; set; }
    public byte[] Rodata { get; set; } = [];
    public bool IncludeStapsdtBase { get; set; } = true;

    private readonly List<byte[]> _notes = [];
    private readonly List<(string Name, ulong Value, ulong Size, bool Function, bool Local, int Section)> _symbols = [];

    /// <summary>A stapsdt note with the given raw fields (as they would be stored before any adjustment).</summary>
    public TestElfWriter Note(string provider, string name, ulong loc, ulong baseAddr, ulong sema, string args)
    {
        var desc = new List<byte>();
        Span<byte> u64 = stackalloc byte[8];
        foreach (var v in new[] { loc, baseAddr, sema })
        {
            BinaryPrimitives.WriteUInt64LittleEndian(u64, v);
            desc.AddRange(u64.ToArray());
        }
        foreach (var s in new[] { provider, name, args })
        {
            desc.AddRange(Encoding.UTF8.GetBytes(s));
            desc.Add(0);
        }
        _notes.Add(RawNote("stapsdt", 3, desc.ToArray()));
        return this;
    }

    /// <summary>Any note, e.g. a non-stapsdt one that must be skipped.</summary>
    public TestElfWriter RawNoteBytes(byte[] note)
    {
        _notes.Add(note);
        return this;
    }

    /// <summary>A stapsdt note for a site at text+offset with semaphore at .probes+semaOffset (null = none), correctly based.</summary>
    public TestElfWriter Site(string provider, string name, int textOffset, int? semaOffset, string args) =>
        Note(provider, name, TextAddress + (ulong)textOffset, StapsdtBaseAddress,
            semaOffset is int s ? ProbesAddress + (ulong)s : 0, args);

    /// <summary>An object symbol in .data (section index of .data).</summary>
    public TestElfWriter DataSymbol(string name, ulong value, ulong size = 8, bool local = false)
    {
        _symbols.Add((name, value, size, false, local, SectionIndexData));
        return this;
    }

    public static byte[] RawNote(string name, uint type, byte[] desc)
    {
        var n = Encoding.ASCII.GetBytes(name + "\0");
        var b = new List<byte>();
        Span<byte> u32 = stackalloc byte[4];
        foreach (var v in new[] { (uint)n.Length, (uint)desc.Length, type })
        {
            BinaryPrimitives.WriteUInt32LittleEndian(u32, v);
            b.AddRange(u32.ToArray());
        }
        b.AddRange(n);
        while (b.Count % 4 != 0) b.Add(0);
        b.AddRange(desc);
        while (b.Count % 4 != 0) b.Add(0);
        return b.ToArray();
    }

    // Section indices (0 is SHN_UNDEF).
    private const int SectionIndexText = 1, SectionIndexData = 4;

    public byte[] Build()
    {
        var file = new byte[0x4000];
        // text: nops
        file.AsSpan((int)TextFileOffset, 0x1000).Fill(0x90);
        PyRuntime?.CopyTo(file, (int)DataFileOffset + 0x800);
        Rodata.CopyTo(file, (int)RodataFileOffset);

        var tail = new List<byte>();
        ulong Append(byte[] data)
        {
            while ((file.Length + tail.Count) % 8 != 0) tail.Add(0);
            ulong off = (ulong)(file.Length + tail.Count);
            tail.AddRange(data);
            return off;
        }

        var notes = _notes.SelectMany(n => n).ToArray();
        ulong notesOff = Append(notes);

        // .strtab and .symtab (locals first, as ELF requires; sh_info = first global index).
        var strtab = new List<byte> { 0 };
        var ordered = _symbols.OrderBy(s => s.Local ? 0 : 1).ToList();
        var symtab = new byte[24 * (ordered.Count + 1)];
        for (int i = 0; i < ordered.Count; i++)
        {
            var s = ordered[i];
            var e = symtab.AsSpan(24 * (i + 1));
            BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)strtab.Count);
            strtab.AddRange(Encoding.ASCII.GetBytes(s.Name));
            strtab.Add(0);
            e[4] = (byte)(((s.Local ? 0 : 1) << 4) | (s.Function ? 2 : 1));
            BinaryPrimitives.WriteUInt16LittleEndian(e[6..], (ushort)s.Section);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], s.Value);
            BinaryPrimitives.WriteUInt64LittleEndian(e[16..], s.Size);
        }
        int firstGlobal = 1 + ordered.Count(s => s.Local);
        ulong symtabOff = Append(symtab);
        ulong strtabOff = Append(strtab.ToArray());

        var sections = new List<(string Name, uint Type, ulong Flags, ulong Addr, ulong Off, ulong Size, uint Link, uint Info, ulong Align, ulong EntSize)>
        {
            (".text", 1, 6, TextAddress, TextFileOffset, 0xf00, 0, 0, 16, 0),                       // 1
            (".stapsdt.base", 1, 2, StapsdtBaseAddress, TextFileOffset + 0xf00, 1, 0, 0, 1, 0),     // 2
            (".probes", 1, 3, ProbesAddress, DataFileOffset, 0x100, 0, 0, 2, 0),                     // 3
            (".data", 1, 3, DataAddress, DataFileOffset + 0x100, 0x700, 0, 0, 8, 0),                 // 4
            (".PyRuntime", 1, 3, PyRuntimeAddress, DataFileOffset + 0x800, 0x800, 0, 0, 32, 0),      // 5
            (".rodata", 1, 2, RodataAddress, RodataFileOffset, 0x1000, 0, 0, 32, 0),                 // 6
            (".note.stapsdt", 7, 0, 0, notesOff, (ulong)notes.Length, 0, 0, 4, 0),                   // 7
            (".symtab", 2, 0, 0, symtabOff, (ulong)symtab.Length, 9, (uint)firstGlobal, 8, 24),      // 8
            (".strtab", 3, 0, 0, strtabOff, (ulong)strtab.Count, 0, 0, 1, 0),                        // 9
        };
        if (!IncludeStapsdtBase)
            sections[1] = (".comment", 1, 0, 0, TextFileOffset + 0xf00, 1, 0, 0, 1, 0);
        if (PyRuntime is null)
            sections[4] = (".data.rel.ro", 1, 3, PyRuntimeAddress, DataFileOffset + 0x800, 0x800, 0, 0, 32, 0);

        var shstrtab = new List<byte> { 0 };
        var nameOffsets = new List<uint>();
        foreach (var s in sections.Select(s => s.Name).Append(".shstrtab"))
        {
            nameOffsets.Add((uint)shstrtab.Count);
            shstrtab.AddRange(Encoding.ASCII.GetBytes(s));
            shstrtab.Add(0);
        }
        ulong shstrOff = Append(shstrtab.ToArray());
        sections.Add((".shstrtab", 3, 0, 0, shstrOff, (ulong)shstrtab.Count, 0, 0, 1, 0));

        var shdrs = new byte[64 * (sections.Count + 1)];
        for (int i = 0; i < sections.Count; i++)
        {
            var s = sections[i];
            var h = shdrs.AsSpan(64 * (i + 1));
            BinaryPrimitives.WriteUInt32LittleEndian(h, nameOffsets[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], s.Type);
            BinaryPrimitives.WriteUInt64LittleEndian(h[8..], s.Flags);
            BinaryPrimitives.WriteUInt64LittleEndian(h[16..], s.Addr);
            BinaryPrimitives.WriteUInt64LittleEndian(h[24..], s.Off);
            BinaryPrimitives.WriteUInt64LittleEndian(h[32..], s.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(h[40..], s.Link);
            BinaryPrimitives.WriteUInt32LittleEndian(h[44..], s.Info);
            BinaryPrimitives.WriteUInt64LittleEndian(h[48..], s.Align);
            BinaryPrimitives.WriteUInt64LittleEndian(h[56..], s.EntSize);
        }
        ulong shOff = Append(shdrs);

        var result = file.Concat(tail).ToArray();
        var eh = result.AsSpan();
        "\u007fELF"u8.CopyTo(eh);
        eh[4] = 2; eh[5] = 1; eh[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(eh[16..], (ushort)(SharedObject ? 3 : 2));
        BinaryPrimitives.WriteUInt16LittleEndian(eh[18..], 62);
        BinaryPrimitives.WriteUInt32LittleEndian(eh[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(eh[24..], TextAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(eh[32..], 64);
        BinaryPrimitives.WriteUInt64LittleEndian(eh[40..], shOff);
        BinaryPrimitives.WriteUInt16LittleEndian(eh[52..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(eh[54..], 56);
        BinaryPrimitives.WriteUInt16LittleEndian(eh[56..], 3);
        BinaryPrimitives.WriteUInt16LittleEndian(eh[58..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(eh[60..], (ushort)(sections.Count + 1));
        BinaryPrimitives.WriteUInt16LittleEndian(eh[62..], (ushort)sections.Count);

        var segs = new[]
        {
            (Flags: 5u, Off: TextFileOffset, Vaddr: TextAddress),
            (Flags: 6u, Off: DataFileOffset, Vaddr: ProbesAddress),
            (Flags: 4u, Off: RodataFileOffset, Vaddr: RodataAddress),
        };
        for (int i = 0; i < segs.Length; i++)
        {
            var p = eh[(64 + 56 * i)..];
            BinaryPrimitives.WriteUInt32LittleEndian(p, 1);
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], segs[i].Flags);
            BinaryPrimitives.WriteUInt64LittleEndian(p[8..], segs[i].Off);
            BinaryPrimitives.WriteUInt64LittleEndian(p[16..], segs[i].Vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[24..], segs[i].Vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[32..], 0x1000);
            BinaryPrimitives.WriteUInt64LittleEndian(p[40..], 0x1000);
            BinaryPrimitives.WriteUInt64LittleEndian(p[48..], 0x1000);
        }
        return result;
    }

    /// <summary>Builds into a fresh temp file and returns its path.</summary>
    public string WriteTemp(TempDir dir, string name = "test.elf")
    {
        var path = Path.Combine(dir.Path, name);
        File.WriteAllBytes(path, Build());
        return path;
    }
}

/// <summary>A temporary directory removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("pyprobe-usdt-").FullName;
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
