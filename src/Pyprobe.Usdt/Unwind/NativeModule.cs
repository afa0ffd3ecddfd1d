using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// One executable mapping of an ELF file in a process: [<see cref="Start"/>, <see cref="End"/>) holds code of
/// <see cref="Elf"/> at link-time address = runtime address − <see cref="Bias"/>. <see cref="Path"/> is the file as the
/// process sees it ("[vdso]" for the kernel's).
/// </summary>
public sealed record NativeModule(ulong Start, ulong End, string Path, ulong Bias, ElfImage Elf)
{
    /// <summary>The file's call frame table, parsed on first use and shared by every module of the same image.</summary>
    public CallFrameTable? Frames => CallFrameTable.For(Elf);

    public bool Contains(ulong address) => address >= Start && address < End;

    /// <summary>
    /// The bias of a mapping of <paramref name="elf"/> at <paramref name="start"/> from file offset
    /// <paramref name="offset"/>: the PT_LOAD whose (page-rounded) file range holds that offset says which link-time
    /// address the offset has. Null when no segment does (a mapping of something other than the file's code).
    /// </summary>
    public static ulong? BiasOf(ElfImage elf, ulong start, ulong offset)
    {
        const ulong pageMask = 0xfff;
        foreach (var segment in elf.LoadSegments.OrderByDescending(s => s.Executable))
        {
            var first = segment.FileOffset & ~pageMask;
            if (offset < first || offset >= segment.FileOffset + Math.Max(segment.FileSize, 1)) continue;
            // Wrapping arithmetic: offset may lie below p_offset by the page rounding, the bias may be "negative".
            return unchecked(start - (segment.VirtualAddress - segment.FileOffset + offset));
        }
        return null;
    }
}
