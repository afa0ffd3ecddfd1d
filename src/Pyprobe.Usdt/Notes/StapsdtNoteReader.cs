using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Usdt;

/// <summary>
/// Decodes the contents of a .note.stapsdt section: a sequence of ELF notes
/// (u32 namesz, u32 descsz, u32 type; name and desc each padded to 4 bytes). Notes of type 3 named
/// "stapsdt" carry: u64 loc, u64 base, u64 semaphore, provider\0 name\0 args\0 (kernel-bpf.md §3.1).
/// Other notes are skipped. Every length is bounds-checked so corrupt input yields a UsdtException.
/// </summary>
public static class StapsdtNoteReader
{
    private const uint NT_STAPSDT = 3;
    private const int HeaderSize = 12;
    private const int FixedDescSize = 24;

    public static IReadOnlyList<StapsdtNote> Parse(ReadOnlySpan<byte> section, string path)
    {
        var notes = new List<StapsdtNote>();
        int pos = 0;
        while (pos < section.Length)
        {
            // Trailing zero padding after the last note happens with some linkers.
            if (section.Length - pos < HeaderSize)
            {
                if (section[pos..].IndexOfAnyExcept((byte)0) < 0) break;
                throw Bad(path, pos, "truncated note header");
            }
            uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(section[pos..]);
            uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(section[(pos + 4)..]);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(section[(pos + 8)..]);
            long nameStart = pos + HeaderSize;
            long descStart = nameStart + Align4(namesz);
            long end = descStart + Align4(descsz);
            // The last note's padding may be missing; only the unpadded desc must fit.
            if (descStart > section.Length || descStart + descsz > section.Length)
                throw Bad(path, pos, $"note sizes (namesz {namesz}, descsz {descsz}) run past the end of the section");

            var name = section.Slice((int)nameStart, (int)namesz);
            if (type == NT_STAPSDT && name.SequenceEqual("stapsdt\0"u8))
                notes.Add(ParseDesc(section.Slice((int)descStart, (int)descsz), path, pos));

            pos = (int)Math.Min(end, section.Length);
        }
        return notes;
    }

    private static StapsdtNote ParseDesc(ReadOnlySpan<byte> desc, string path, int notePos)
    {
        // At least the three addresses plus three NUL terminators (libbpf: descsz >= 24 + 3).
        if (desc.Length < FixedDescSize + 3)
            throw Bad(path, notePos, $"stapsdt descriptor too short ({desc.Length} bytes)");
        ulong loc = BinaryPrimitives.ReadUInt64LittleEndian(desc);
        ulong baseAddr = BinaryPrimitives.ReadUInt64LittleEndian(desc[8..]);
        ulong sema = BinaryPrimitives.ReadUInt64LittleEndian(desc[16..]);
        var rest = desc[FixedDescSize..];
        string provider = TakeString(ref rest, path, notePos, "provider");
        string probe = TakeString(ref rest, path, notePos, "probe name");
        string args = TakeString(ref rest, path, notePos, "arguments");
        if (provider.Length == 0 || probe.Length == 0)
            throw Bad(path, notePos, "empty provider or probe name");
        return new StapsdtNote(loc, baseAddr, sema, provider, probe, args);
    }

    private static string TakeString(ref ReadOnlySpan<byte> rest, string path, int notePos, string what)
    {
        int nul = rest.IndexOf((byte)0);
        if (nul < 0)
            throw Bad(path, notePos, $"{what} string is not NUL-terminated");
        string s = Encoding.UTF8.GetString(rest[..nul]);
        rest = rest[(nul + 1)..];
        return s;
    }

    private static long Align4(uint n) => ((long)n + 3) & ~3L;

    private static UsdtException Bad(string path, int pos, string what) =>
        new($"{path}: malformed .note.stapsdt at section offset 0x{pos:x}: {what}.");
}
