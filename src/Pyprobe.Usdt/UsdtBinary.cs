using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt;

/// <summary>
/// An ELF file's USDT probes plus the ELF facts needed to attach to them. Open() reads the
/// .note.stapsdt section, applies the .stapsdt.base prelink delta to locations and semaphores,
/// converts both to file offsets and parses every argument string up front, so a binary that
/// opens successfully is fully usable by the code generator.
/// </summary>
public sealed class UsdtBinary
{
    private UsdtBinary(string path, ElfImage elf, IReadOnlyList<UsdtProbe> probes)
    {
        Path = path;
        Elf = elf;
        Probes = probes;
    }

    /// <summary>The path the file was opened from.</summary>
    public string Path { get; }
    /// <summary>Header, segment, section and symbol facts.</summary>
    public ElfImage Elf { get; }
    /// <summary>All probes, ordered by provider then name; sites ordered by address.</summary>
    public IReadOnlyList<UsdtProbe> Probes { get; }

    public ElfFileKind Kind => Elf.Kind;

    /// <summary>True if any probe has this provider (CPython's is "python").</summary>
    public bool HasProvider(string provider) => Probes.Any(p => p.Provider == provider);

    /// <summary>The probe provider:name, or null.</summary>
    public UsdtProbe? FindProbe(string provider, string name) =>
        Probes.FirstOrDefault(p => p.Provider == provider && p.Name == name);

    /// <summary>Opens and parses a file. Throws <see cref="UsdtException"/> for anything unreadable or malformed.</summary>
    public static UsdtBinary Open(string path) => FromImage(path, ElfImage.Open(path));

    /// <summary>Like <see cref="Open"/> for an image in memory (first <paramref name="length"/> bytes of <paramref name="data"/>; not copied).</summary>
    internal static UsdtBinary OpenInMemory(string path, byte[] data, int length) =>
        FromImage(path, ElfImage.OpenInMemory(path, data, length));

    private static UsdtBinary FromImage(string path, ElfImage elf)
    {
        var noteSection = elf.FindSection(".note.stapsdt");
        if (noteSection is null)
            return new UsdtBinary(path, elf, []);
        var notes = StapsdtNoteReader.Parse(elf.ReadSection(noteSection), path);

        // Prelink compensation (kernel-bpf.md §3.2 step 2): if prelink moved the file, the section
        // address of .stapsdt.base differs from the base recorded in each note. Apply the delta to
        // both location and semaphore, as SystemTap intends.
        ulong? actualBase = elf.FindSection(".stapsdt.base")?.Address;

        var byProbe = new Dictionary<(string, string), List<UsdtSite>>();
        foreach (var note in notes)
        {
            ulong delta = note.Base != 0 && actualBase is ulong b && b != 0 ? unchecked(b - note.Base) : 0;
            ulong loc = unchecked(note.Location + delta);
            ulong sema = note.Semaphore == 0 ? 0 : unchecked(note.Semaphore + delta);

            ulong fileOffset = elf.TryVirtualAddressToFileOffset(loc, executable: true)
                ?? throw new UsdtException($"{path}: probe {note.ProbeId} at 0x{loc:x} is not inside an executable PT_LOAD segment.");
            // The kernel attaches at a file offset: the instruction must lie in the file's data, not
            // in a segment's zero-filled tail or past the end of a truncated file.
            if (elf.TryVirtualAddressToFileDataOffset(loc, executable: true, 1) != fileOffset)
                throw new UsdtException($"{path}: probe {note.ProbeId} at 0x{loc:x} (file offset 0x{fileOffset:x}) is not backed by data in the file (file length 0x{elf.FileLength:x}).");
            ulong semaOffset = 0;
            if (sema != 0)
            {
                semaOffset = elf.TryVirtualAddressToFileOffset(sema, executable: false)
                    ?? throw new UsdtException($"{path}: semaphore of probe {note.ProbeId} at 0x{sema:x} is not inside a non-executable PT_LOAD segment.");
                // Same for the 16-bit semaphore (ref_ctr_offset).
                if (elf.TryVirtualAddressToFileDataOffset(sema, executable: false, 2) != semaOffset)
                    throw new UsdtException($"{path}: semaphore of probe {note.ProbeId} at 0x{sema:x} (file offset 0x{semaOffset:x}) is not backed by data in the file (file length 0x{elf.FileLength:x}).");
            }

            var args = UsdtArgumentParser.ParseList(note.Arguments, note.ProbeId);
            var key = (note.Provider, note.Name);
            if (!byProbe.TryGetValue(key, out var sites))
                byProbe[key] = sites = [];
            sites.Add(new UsdtSite(loc, fileOffset, sema, semaOffset, note.Arguments, args));
        }

        var probes = byProbe
            .OrderBy(kv => kv.Key.Item1, StringComparer.Ordinal)
            .ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal)
            .Select(kv => new UsdtProbe(kv.Key.Item1, kv.Key.Item2, kv.Value.OrderBy(s => s.Address).ToList()))
            .ToList();
        return new UsdtBinary(path, elf, probes);
    }

    /// <summary>Link-time address of a symbol from .symtab/.dynsym; throws if missing or ambiguous.</summary>
    public ulong ResolveSymbolAddress(string symbol) => Elf.ResolveSymbolAddress(symbol);

    /// <summary>The link-time address a sym±K(%rip) argument points to (symbol address + addend).</summary>
    public ulong ResolveRipRelative(UsdtRipRelativeArgument argument) =>
        unchecked(ResolveSymbolAddress(argument.Symbol) + (ulong)argument.Addend);

    /// <summary>
    /// Distance from the probe instruction to the data a sym(%rip) argument names:
    /// runtime address = ctx->ip + this value, independent of where the file is loaded.
    /// </summary>
    public long RipRelativeDelta(UsdtSite site, UsdtRipRelativeArgument argument) =>
        unchecked((long)(ResolveRipRelative(argument) - site.Address));
}
