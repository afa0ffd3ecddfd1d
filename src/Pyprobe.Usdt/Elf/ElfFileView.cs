using System.IO.MemoryMappedFiles;

namespace Pyprobe.Usdt.Elf;

/// <summary>
/// The bytes of an ELF file for as long as its <see cref="ElfImage"/> lives: the whole file mapped read-only once, on
/// first use. Every read before (a fresh array per section, a new mapping per scan) touched the same page-cache pages
/// again through new memory; one mapping faults each page once, sixteen at a time (the kernel maps a fault's
/// neighbours too), and reads need no copy. On a VM where a page touched for the first time exits to the host, that
/// was milliseconds of every attach (a pyenv libpython's .symtab, .strtab, .rela.dyn and .rodata are 3 MB).
/// </summary>
internal sealed unsafe class ElfFileView
{
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _start;

    public long Length { get; }

    private ElfFileView(MemoryMappedViewAccessor view, long length)
    {
        _view = view;
        Length = length;
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        _start = start + view.PointerOffset;
    }

    /// <summary>
    /// Maps the first <paramref name="length"/> bytes of <paramref name="path"/> (its length when the headers were read).
    /// The file is closed once mapped (a mapping needs no descriptor): a run that follows many processes opens an image
    /// for each, and kept descriptors would pile up with them.
    /// </summary>
    public static ElfFileView Open(string path, long length)
    {
        using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        return new ElfFileView(file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read), length);
    }

    /// <summary><paramref name="count"/> bytes at <paramref name="offset"/>; the caller has checked they lie inside the file.</summary>
    public ReadOnlySpan<byte> Span(ulong offset, int count) => new(_start + offset, count);

    ~ElfFileView()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
    }
}
