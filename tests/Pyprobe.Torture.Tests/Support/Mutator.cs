using System.Text;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// Aimed mutations of a real ELF file: header fields, section headers of the sections USDT
/// discovery reads, program headers, the stapsdt notes, random byte flips and truncation.
/// Every mutation is a pure function of the <see cref="Rng"/> state; <see cref="Apply"/> returns
/// a description of what it did for failure messages.
/// </summary>
public static class Mutator
{
    // (name, offset, width) of the ELF64 header fields worth corrupting.
    private static readonly (string Name, int Offset, int Width)[] HeaderFields =
    [
        ("e_type", 16, 2), ("e_version", 20, 4), ("e_phoff", 32, 8), ("e_shoff", 40, 8), ("e_ehsize", 52, 2),
        ("e_phentsize", 54, 2), ("e_phnum", 56, 2), ("e_shentsize", 58, 2), ("e_shnum", 60, 2), ("e_shstrndx", 62, 2),
    ];

    private static readonly (string Name, int Offset, int Width)[] SectionFields =
    [
        ("sh_name", 0, 4), ("sh_type", 4, 4), ("sh_flags", 8, 8), ("sh_addr", 16, 8), ("sh_offset", 24, 8),
        ("sh_size", 32, 8), ("sh_link", 40, 4), ("sh_info", 44, 4), ("sh_addralign", 48, 8), ("sh_entsize", 56, 8),
    ];

    private static readonly (string Name, int Offset, int Width)[] SegmentFields =
    [
        ("p_type", 0, 4), ("p_flags", 4, 4), ("p_offset", 8, 8), ("p_vaddr", 16, 8), ("p_paddr", 24, 8),
        ("p_filesz", 32, 8), ("p_memsz", 40, 8),
    ];

    private static readonly string[] TargetSections =
        [".note.stapsdt", ".stapsdt.base", ".dynsym", ".dynstr", ".shstrtab", ".symtab", ".strtab", ".text", ".probes"];

    /// <summary>An "interesting" replacement for a field of <paramref name="width"/> bytes holding <paramref name="old"/>.</summary>
    public static ulong Interesting(ref Rng r, ulong old, int width, long fileLength)
    {
        ulong mask = width == 8 ? ulong.MaxValue : (1UL << (8 * width)) - 1;
        ulong v = r.Next(20) switch
        {
            0 => 0,
            1 => 1,
            2 => old + 1,
            3 => old - 1,
            4 => ulong.MaxValue,
            5 => mask >> 1,               // max signed
            6 => (mask >> 1) + 1,         // min signed
            7 => (ulong)fileLength,
            8 => (ulong)fileLength - 1,
            9 => (ulong)fileLength + 1,
            10 => old * 2,
            11 => old ^ (1UL << r.Next(8 * width)),
            12 => (ulong)r.Next(0, 256),
            13 => r.NextU64(),
            14 => 0xffffffffUL,
            15 => 0x10000UL + (ulong)r.Next(16),
            16 => old + (ulong)r.Next(1, 64) * 8,
            17 => old - (ulong)r.Next(1, 64) * 8,
            18 => (ulong)r.Pick([12, 24, 27, 56, 64, 4096, 65535, 0x7fffffff]),
            _ => (ulong)fileLength - (ulong)r.Next(1, 4096),
        };
        return v & mask;
    }

    public static string Apply(ref Rng r, MutableImage img)
    {
        var d = new StringBuilder();
        int count = r.Chance(70) ? 1 : r.Next(2, 4);
        for (int i = 0; i < count; i++)
        {
            if (i > 0) d.Append("; ");
            d.Append(ApplyOne(ref r, img));
        }
        return d.ToString();
    }

    private static string ApplyOne(ref Rng r, MutableImage img)
    {
        var L = img.Source.Layout;
        long len = img.Data.Length;
        int kind = r.Next(100);
        if (kind < 14)
        {
            var f = r.Pick(HeaderFields);
            return Field(ref r, img, f.Offset, f.Width, f.Name);
        }
        if (kind < 40)
        {
            var s = r.Chance(85) ? L.Find(r.Pick(TargetSections)) ?? r.Pick(L.Sections) : r.Pick(L.Sections);
            var f = r.Pick(SectionFields);
            return Field(ref r, img, s.HeaderOffset + f.Offset, f.Width, $"{s.Name}.{f.Name}");
        }
        if (kind < 52)
        {
            int p = r.Next(L.PhNum);
            var f = r.Pick(SegmentFields);
            return Field(ref r, img, L.PhOff + 56L * p + f.Offset, f.Width, $"phdr[{p}].{f.Name}");
        }
        if (kind < 75 && L.NoteStarts.Count > 0)
            return NoteMutation(ref r, img);
        if (kind < 85)
        {
            // Byte flips in the metadata: ELF header, program headers, section header table.
            long lo, hi;
            switch (r.Next(3))
            {
                case 0: lo = 0; hi = 64; break;
                case 1: lo = L.PhOff; hi = L.PhOff + 56L * L.PhNum; break;
                default: lo = L.ShOff; hi = L.ShOff + 64L * L.ShNum; break;
            }
            return Flips(ref r, img, lo, hi);
        }
        if (kind < 90)
            return Flips(ref r, img, 0, len);
        return Truncate(ref r, img);
    }

    private static string Field(ref Rng r, MutableImage img, long offset, int width, string name)
    {
        ulong old = img.ReadUInt(offset, width);
        ulong v = Interesting(ref r, old, width, img.Data.Length);
        img.WriteUInt(offset, width, v);
        return $"{name}@0x{offset:x}: 0x{old:x} -> 0x{v:x}";
    }

    private static string Flips(ref Rng r, MutableImage img, long lo, long hi)
    {
        if (hi <= lo) return "no-op";
        int n = r.Next(1, 9);
        var d = new StringBuilder("flip");
        for (int i = 0; i < n; i++)
        {
            long at = lo + (long)(r.NextU64() % (ulong)(hi - lo));
            byte b = r.Chance(50) ? (byte)(img.ReadUInt(at, 1) ^ (1u << r.Next(8))) : (byte)r.Next(256);
            img.Write(at, [b]);
            d.Append($" [0x{at:x}]=0x{b:x2}");
        }
        return d.ToString();
    }

    private static string Truncate(ref Rng r, MutableImage img)
    {
        var L = img.Source.Layout;
        long len = img.Data.Length;
        long at = r.Next(6) switch
        {
            0 => r.Next(0, 128),                                                    // inside the ELF header
            1 => L.PhOff + r.Next(0, 56 * Math.Max(1, L.PhNum)),                   // inside the program headers
            2 => L.ShOff + r.Next(0, 64 * Math.Max(1, L.ShNum)),                   // inside the section headers
            3 => L.NoteSection is { } n ? n.FileOffset + r.Next(0, (int)Math.Max(1, n.Size)) : len / 2,
            4 => len - r.Next(1, 4096),
            _ => (long)(r.NextU64() % (ulong)len),
        };
        at = Math.Clamp(at, 0, len - 1);
        img.Length = (int)Math.Min(img.Length, at);
        return $"truncate to 0x{img.Length:x}";
    }

    private static string NoteMutation(ref Rng r, MutableImage img)
    {
        var L = img.Source.Layout;
        var ns = L.NoteSection!;
        long note = r.Pick(L.NoteStarts);
        switch (r.Next(6))
        {
            case 0:
            {
                var (name, off) = r.Pick([("namesz", 0), ("descsz", 4), ("type", 8)]);
                return Field(ref r, img, note + off, 4, $"note@0x{note:x}.{name}");
            }
            case 1:
            {
                // The three addresses (loc, base, semaphore) in the descriptor.
                var (name, off) = r.Pick([("loc", 0), ("base", 8), ("sema", 16)]);
                long at = note + 12 + 8 + off; // name "stapsdt\0" is 8 bytes
                ulong old = img.ReadUInt(at, 8);
                ulong v = r.Chance(50) ? Interesting(ref r, old, 8, img.Data.Length) : old + (ulong)(r.Next(-0x10000, 0x10000));
                img.WriteUInt(at, 8, v);
                return $"note@0x{note:x}.{name}: 0x{old:x} -> 0x{v:x}";
            }
            case 2:
            {
                // Remove NULs: strings without terminators.
                uint descsz = (uint)img.ReadUInt(note + 4, 4);
                long desc = note + 20;
                var d = new StringBuilder($"note@0x{note:x} un-NUL");
                int n = r.Next(1, 4);
                for (long p = desc + 24; p < Math.Min(desc + descsz, img.Data.Length) && n > 0; p++)
                    if (img.Data[p] == 0 && r.Chance(60)) { img.Write(p, [(byte)r.Pick("A%@$ \xff"u8.ToArray())]); d.Append($" 0x{p:x}"); n--; }
                return d.ToString();
            }
            case 3:
            {
                // Change the argument string in place (same length): exercises argument errors via a real file.
                uint descsz = (uint)img.ReadUInt(note + 4, 4);
                long desc = note + 20;
                long from = desc + 24 + r.Next(0, (int)Math.Clamp((long)descsz - 24, 1, 4096));
                byte b = (byte)r.Pick("0123456789@%$(),-+ abcxyz"u8.ToArray());
                img.Write(from, [b]);
                return $"note byte 0x{from:x} = '{(char)b}'";
            }
            case 4:
                // Shrink/grow the note section's size (truncated last note / reading past the notes).
                return Field(ref r, img, ns.HeaderOffset + 32, 8, ".note.stapsdt.sh_size(note)");
            default:
                return Flips(ref r, img, note, Math.Min(note + 128, ns.FileOffset + ns.Size));
        }
    }
}
