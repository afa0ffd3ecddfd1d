using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.MemoryMappedFiles;

namespace Pyprobe.Usdt.Elf;

/// <summary>
/// The parts of an x86-64 ELF64 file needed for USDT: header facts, PT_LOAD segments, section
/// headers, symbols, plus on-demand byte reads. Headers are parsed once at open (<see cref="ElfHeaderReader"/>);
/// symbols on first lookup (<see cref="ElfSymbolReader"/>); section contents are read later straight from the file
/// so big sections (.rodata, .text) are only touched when asked for.
/// </summary>
public sealed class ElfImage
{
    private const ushort EM_X86_64 = 62;

    // Symbols are read on first use. A lookup by name goes through an index of the raw tables (ElfSymbolIndex): an
    // attach looks up a dozen names, and turning every entry of .symtab/.dynsym into a string and a dictionary slot
    // for that was a large part of attaching. The full list is only for the few who enumerate symbols.
    private readonly Lazy<IReadOnlyList<ElfSymbol>> _symbols;
    private readonly Lazy<ElfSymbolIndex> _symbolIndex;
    private readonly Lazy<ElfGnuHash?> _dynamicHash;
    // Set when the image was opened from memory (OpenInMemory): reads come from here, not Path.
    private readonly byte[]? _memory;
    // Otherwise reads come from the file, mapped once (ElfFileView).
    private readonly Lazy<ElfFileView>? _file;
    // sh_link of each section: a symbol table's string table.
    private readonly IReadOnlyList<uint> _links;

    private ElfImage(string path, ElfHeaders headers, long fileLength, byte[]? memory)
    {
        Path = path;
        FileLength = fileLength;
        _memory = memory;
        if (memory is null) _file = new(() => ElfFileView.Open(path, fileLength));
        Kind = headers.Kind;
        LoadSegments = headers.Segments;
        Sections = headers.Sections;
        _links = headers.Links;
        _symbols = new(() => ElfSymbolReader.Read(this, _links));
        _dynamicHash = new(() => ElfSymbolIndex.DynamicHash(this, _links));
        _symbolIndex = new(() => ElfSymbolIndex.Build(this, _links, _dynamicHash.Value));
    }

    public string Path { get; }
    public ElfFileKind Kind { get; }
    /// <summary>Always true for now: 32-bit and non-x86-64 files are rejected by <see cref="Open"/>.</summary>
    public bool Is64Bit => true;
    public string Machine => "x86_64";
    public IReadOnlyList<ElfLoadSegment> LoadSegments { get; }
    public IReadOnlyList<ElfSection> Sections { get; }
    /// <summary>Named, defined and undefined symbols of .symtab followed by .dynsym.</summary>
    public IReadOnlyList<ElfSymbol> Symbols => _symbols.Value;
    /// <summary>Length of the file (or in-memory image) when its headers were parsed.</summary>
    internal long FileLength { get; }

    /// <summary>
    /// Parses the headers of <paramref name="path"/>; any malformation becomes a <see cref="UsdtException"/>. The same
    /// file (path, length and modification time) opened again in this process is the same image: one attach opens
    /// a libpython from several places (version, runtime, eval-frame sites), and each would read its symbols anew.
    /// </summary>
    public static ElfImage Open(string path)
    {
        FileInfo file;
        try
        {
            file = new FileInfo(path);
            if (!file.Exists) return WithHeaders(path, null, 0); // the same message as any open failure
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return WithHeaders(path, null, 0);
        }
        var key = (path, file.Length, file.LastWriteTimeUtc);
        if (Opened.TryGetValue(key, out var known)) return known;
        var image = WithHeaders(path, null, 0);
        // Bounded: a long run (--all, serve) may see files replaced; old images are simply dropped.
        if (Opened.Count >= MaxOpened) Opened.Clear();
        return Opened.GetOrAdd(key, image);
    }

    private const int MaxOpened = 32;
    private static readonly ConcurrentDictionary<(string Path, long Length, DateTime Modified), ElfImage> Opened = new();

    /// <summary>
    /// Parses an ELF image held in memory (the first <paramref name="length"/> bytes of
    /// <paramref name="data"/>); <paramref name="path"/> is only used in messages. The array is
    /// referenced, not copied: it must not change while the image is in use.
    /// </summary>
    internal static ElfImage OpenInMemory(string path, byte[] data, int length) => WithHeaders(path, data, length);

    /// <summary>Opens the file (or the in-memory image), checks and reads its headers, and closes it.</summary>
    private static ElfImage WithHeaders(string path, byte[]? memory, int memoryLength)
    {
        Stream stream;
        if (memory is not null)
        {
            stream = new MemoryStream(memory, 0, memoryLength, writable: false);
        }
        else
        {
            try
            {
                stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsdtException($"Cannot open {path}: {e.Message}", e);
            }
        }
        using (stream)
        {
            CheckIdent(path, stream);
            try
            {
                return new ElfImage(path, ElfHeaderReader.Read(path, stream), stream.Length, memory);
            }
            catch (UsdtException) { throw; }
            catch (Exception e) when (e is IOException or EndOfStreamException or OverflowException or ArgumentException)
            {
                throw new UsdtException($"{path}: malformed or truncated ELF file ({e.GetType().Name}: {e.Message})", e);
            }
        }
    }

    // Cheap checks of e_ident/e_type/e_machine before the headers are read, so the common "wrong kind of file"
    // cases get precise messages.
    private static void CheckIdent(string path, Stream stream)
    {
        Span<byte> ident = stackalloc byte[20];
        int n = stream.ReadAtLeast(ident, ident.Length, throwOnEndOfStream: false);
        stream.Position = 0;
        if (n < 4 || ident[0] != 0x7f || ident[1] != (byte)'E' || ident[2] != (byte)'L' || ident[3] != (byte)'F')
            throw new UsdtException($"{path} is not an ELF file.");
        if (n < ident.Length)
            throw new UsdtException($"{path}: truncated ELF header ({n} bytes).");
        if (ident[4] != 2)
            throw new UsdtException($"{path} is a 32-bit ELF file; only x86-64 (ELF64) is supported.");
        if (ident[5] != 1)
            throw new UsdtException($"{path} is big-endian; only x86-64 little-endian is supported.");
        ushort type = (ushort)(ident[16] | ident[17] << 8);
        ushort machine = (ushort)(ident[18] | ident[19] << 8);
        if (type is not (2 or 3))
            throw new UsdtException($"{path} is neither an executable nor a shared object (e_type {type}).");
        if (machine != EM_X86_64)
            throw new UsdtException($"{path} is not an x86-64 ELF file (e_machine {machine}).");
    }

    /// <summary>The first section with this name, or null.</summary>
    public ElfSection? FindSection(string name) => Sections.FirstOrDefault(s => s.Name == name);

    /// <summary>Reads a section's bytes from the file (empty for SHT_NOBITS).</summary>
    public byte[] ReadSection(ElfSection section, int maxBytes = int.MaxValue)
    {
        if (!section.HasFileData) return [];
        ulong len = Math.Min(section.Size, (ulong)maxBytes);
        return ReadFileBytes(section.FileOffset, checked((int)len));
    }

    /// <summary>
    /// Runs <paramref name="scan"/> over a section's bytes mapped from the file for the scan alone (page cache, no copy):
    /// for one-off searches of large sections (.rodata, string tables, relocations) at start-up. Not through the image's
    /// lasting mapping (<see cref="ElfFileView"/>): what a scan touched would stay in pyprobe's resident memory.
    /// </summary>
    /// <remarks>
    /// A section of at most <see cref="ScanThroughLastingMappingBytes"/> is read through the lasting mapping: it leaves
    /// resident what one page fault maps anyway, where a mapping of its own costs opening the file again and an munmap
    /// (which flushes the TLB of every CPU pyprobe's threads run on: ~0.35 ms of a launch beside a busy target, for the
    /// two relocation tables of a Debian python3.9).
    /// </remarks>
    public unsafe T ScanSection<T>(ElfSection section, SectionScanner<T> scan)
    {
        if (!section.HasFileData || section.Size == 0) return scan([]);
        var length = checked((int)section.Size);
        if (section.FileOffset > (ulong)FileLength || (ulong)length > (ulong)FileLength - section.FileOffset)
            throw new UsdtException($"{Path}: section {section.Name} lies beyond the end of the file.");
        if (_memory is not null) return scan(_memory.AsSpan((int)section.FileOffset, length));
        if (length <= ScanThroughLastingMappingBytes) return scan(Bytes(section.FileOffset, length));
        try
        {
            using var mapped = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            using var view = mapped.CreateViewAccessor((long)section.FileOffset, length, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            try
            {
                return scan(new ReadOnlySpan<byte>(start + view.PointerOffset, length));
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsdtException($"Cannot read {Path}: {e.Message}", e);
        }
    }

    /// <summary>Sixteen pages: what the kernel maps around one page fault of a file mapping.</summary>
    private const int ScanThroughLastingMappingBytes = 64 << 10;

    /// <summary>Bytes of the file (or in-memory image) at a file offset, without a copy, from the image's lasting mapping; valid while this image is.</summary>
    internal ReadOnlySpan<byte> Bytes(ulong fileOffset, int count)
    {
        if (count < 0 || fileOffset > (ulong)FileLength || (ulong)count > (ulong)FileLength - fileOffset)
            throw new UsdtException($"{Path}: read of {count} bytes at file offset 0x{fileOffset:x} is beyond the end of the file.");
        if (_memory is not null) return _memory.AsSpan((int)fileOffset, count);
        try
        {
            return _file!.Value.Span(fileOffset, count);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsdtException($"Cannot read {Path}: {e.Message}", e);
        }
    }

    /// <summary>A section's bytes without a copy (empty for SHT_NOBITS); valid while this image is.</summary>
    internal ReadOnlySpan<byte> SectionBytes(ElfSection section) =>
        section.HasFileData && section.Size > 0 ? Bytes(section.FileOffset, checked((int)section.Size)) : [];

    /// <summary>
    /// False when no symbol table can hold <paramref name="name"/>: it is in neither .dynstr nor .strtab. A cheap test
    /// before <see cref="FindSymbols"/>, which reads and indexes both tables (thousands of entries).
    /// </summary>
    public bool MayDefineSymbol(string name)
    {
        // Where a lookup needs no index (or it is built), the lookup itself is the cheaper answer.
        if (_symbolIndex.IsValueCreated || _dynamicHash.Value is not null) return FindSymbols(name).Count > 0;
        var needle = new byte[name.Length + 2];
        System.Text.Encoding.ASCII.GetBytes(name, needle.AsSpan(1));
        foreach (var table in new[] { ".dynstr", ".strtab" })
        {
            if (FindSection(table) is not { HasFileData: true } section) continue;
            // A string table starts with a NUL, so every name in it has a NUL on both sides.
            if (ScanSection(section, bytes => bytes.IndexOf(needle) >= 0)) return true;
        }
        return false;
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes at a file offset.</summary>
    public byte[] ReadFileBytes(ulong fileOffset, int count) => Bytes(fileOffset, count).ToArray();

    /// <summary>
    /// Maps a virtual address to its file offset through the PT_LOAD containing it
    /// (vaddr − p_vaddr + p_offset, kernel-bpf.md §3.2); <paramref name="executable"/> restricts the
    /// search to executable (true) or non-executable (false) segments. Null if no such segment.
    /// </summary>
    public ulong? TryVirtualAddressToFileOffset(ulong vaddr, bool? executable = null)
    {
        foreach (var seg in LoadSegments)
        {
            if (!seg.Contains(vaddr)) continue;
            if (executable is bool x && seg.Executable != x) continue;
            return vaddr - seg.VirtualAddress + seg.FileOffset;
        }
        return null;
    }

    /// <summary>
    /// Like <see cref="TryVirtualAddressToFileOffset"/>, but only for addresses whose
    /// <paramref name="size"/> bytes are backed by data inside the file (not the zero-filled
    /// p_memsz tail of a segment, not past a truncated end): what uprobe offsets and
    /// ref_ctr_offset semaphores need.
    /// </summary>
    internal ulong? TryVirtualAddressToFileDataOffset(ulong vaddr, bool executable, ulong size)
    {
        foreach (var seg in LoadSegments)
        {
            if (!seg.Contains(vaddr) || seg.Executable != executable) continue;
            ulong rel = vaddr - seg.VirtualAddress;
            if (rel > seg.FileSize || size > seg.FileSize - rel) return null;
            if (!ElfHeaderReader.FitsInFile(seg.FileOffset, rel, FileLength) || !ElfHeaderReader.FitsInFile(seg.FileOffset + rel, size, FileLength)) return null;
            return seg.FileOffset + rel;
        }
        return null;
    }

    /// <summary>Reads initialised bytes at a virtual address (fails for .bss-like, file-less memory).</summary>
    public byte[] ReadVirtual(ulong vaddr, int count)
    {
        foreach (var seg in LoadSegments)
        {
            if (!seg.Contains(vaddr)) continue;
            ulong rel = vaddr - seg.VirtualAddress;
            if (rel + (ulong)count > seg.FileSize)
                throw new UsdtException($"{Path}: address 0x{vaddr:x} has no initialised file data.");
            return ReadFileBytes(seg.FileOffset + rel, count);
        }
        throw new UsdtException($"{Path}: address 0x{vaddr:x} is not inside any PT_LOAD segment.");
    }

    /// <summary>
    /// Copies the initialised bytes at a virtual address into <paramref name="into"/>, as many as fit and the segment
    /// holds; how many (0 where the address has no file data). For reads that reuse one buffer.
    /// </summary>
    public int ReadVirtualInto(ulong vaddr, Span<byte> into)
    {
        foreach (var seg in LoadSegments)
        {
            if (!seg.Contains(vaddr)) continue;
            ulong rel = vaddr - seg.VirtualAddress;
            if (rel >= seg.FileSize) return 0;
            var count = (int)Math.Min((ulong)into.Length, seg.FileSize - rel);
            Bytes(seg.FileOffset + rel, count).CopyTo(into);
            return count;
        }
        return 0;
    }

    /// <summary>
    /// The 8-byte pointer a loaded image holds at <paramref name="vaddr"/>, as a file (link-time) address: in a position
    /// independent file the loader writes it from an R_X86_64_RELATIVE relocation's addend (the file holds 0 there), in
    /// a fixed-address executable it is the file's own bytes. Null when another kind of relocation sets it (a symbol's
    /// address, known only once loaded).
    /// </summary>
    public ulong? TryReadPointer(ulong vaddr)
    {
        const uint relative = 8; // R_X86_64_RELATIVE
        const int entrySize = 24; // Elf64_Rela: r_offset, r_info, r_addend
        foreach (var section in Sections.Where(s => s.Type == 4 /* SHT_RELA */ && s.Allocated))
        {
            var found = ScanSection(section, bytes =>
            {
                for (var at = 0; at + entrySize <= bytes.Length; at += entrySize)
                {
                    if (BinaryPrimitives.ReadUInt64LittleEndian(bytes[at..]) != vaddr) continue;
                    var type = (uint)BinaryPrimitives.ReadUInt64LittleEndian(bytes[(at + 8)..]);
                    return type == relative ? (Found: true, Value: (ulong?)BinaryPrimitives.ReadUInt64LittleEndian(bytes[(at + 16)..])) : (true, null);
                }
                return (Found: false, Value: (ulong?)null);
            });
            if (found.Found) return found.Value;
        }
        return BinaryPrimitives.ReadUInt64LittleEndian(ReadVirtual(vaddr, 8));
    }

    /// <summary>All symbols (both tables) with this exact name.</summary>
    public IReadOnlyList<ElfSymbol> FindSymbols(string name) => _symbolIndex.Value.Find(name);

    /// <summary>
    /// [start, end) of every defined function symbol with a size (both tables, sorted, no repeats) whose name does not
    /// start with <paramref name="excludedPrefix"/>: where code belongs to some other function.
    /// </summary>
    public (ulong Start, ulong End)[] FunctionRanges(string excludedPrefix) => _symbolIndex.Value.FunctionRanges(excludedPrefix);

    /// <summary>
    /// The address of a defined symbol from .symtab/.dynsym. The same symbol usually appears in
    /// both tables with the same value; several distinct values (e.g. two static variables named
    /// alike in different translation units) are an error because a sym(%rip) argument could mean
    /// either (libbpf/usdt#13).
    /// </summary>
    public ulong ResolveSymbolAddress(string name)
    {
        var values = FindSymbols(name).Where(s => s.IsDefined).Select(s => s.Value).Distinct().ToList();
        if (values.Count == 0)
            throw new UsdtException($"{Path}: symbol '{name}' is not defined in .symtab or .dynsym" +
                (FindSection(".symtab") is null ? " (the file is stripped: no .symtab)." : "."));
        if (values.Count > 1)
            throw new UsdtException($"{Path}: symbol '{name}' is ambiguous: defined at " +
                string.Join(", ", values.Select(v => $"0x{v:x}")) + ".");
        return values[0];
    }

    /// <summary>Like <see cref="ResolveSymbolAddress"/> but returns null instead of throwing.</summary>
    public ElfSymbol? TryFindUniqueSymbol(string name)
    {
        var defined = FindSymbols(name).Where(s => s.IsDefined).ToList();
        return defined.Select(s => s.Value).Distinct().Count() == 1 ? defined[0] : null;
    }
}

/// <summary>A search over a section's bytes (see <see cref="ElfImage.ScanSection{T}"/>).</summary>
public delegate T SectionScanner<T>(ReadOnlySpan<byte> bytes);
