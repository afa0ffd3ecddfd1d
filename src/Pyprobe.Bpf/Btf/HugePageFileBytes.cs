using System.Runtime.InteropServices;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Btf;

/// <summary>
/// A whole file read into anonymous memory that asks for transparent huge pages (MADV_HUGEPAGE), freed on dispose.
/// For the kernel's BTF (5.5 MB): in a fresh managed array every 4 KiB page costs a fault when first written and, on
/// a VM whose host shadows the guest's page tables, another exit when first read, ~25 ms together; in 2 MiB pages
/// reading it took 3–12 ms. Where huge pages are off, the advice is ignored and this is an ordinary mapping.
/// </summary>
internal sealed unsafe class HugePageFileBytes : SafeHandle
{
    private const nuint HugePage = 2 << 20;

    private readonly nuint _mappedLength;

    private HugePageFileBytes(nint mapping, nuint mappedLength, byte* start, int length) : base(0, ownsHandle: true)
    {
        SetHandle(mapping);
        _mappedLength = mappedLength;
        Start = start;
        Length = length;
    }

    public byte* Start { get; }

    public int Length { get; }

    public ReadOnlySpan<byte> Span => new(Start, Length);

    public override bool IsInvalid => handle == 0;

    /// <exception cref="IOException">The file cannot be read or is larger than 2 GiB.</exception>
    public static HugePageFileBytes Read(string path)
    {
        using var file = File.OpenHandle(path);
        var length = RandomAccess.GetLength(file);
        if (length is < 0 or > int.MaxValue) throw new IOException($"{path} is {length} bytes");
        // A huge page must be aligned: map one more, start at the first boundary inside.
        var mappedLength = ((nuint)length + 2 * HugePage - 1) & ~(HugePage - 1);
        var mapping = LibC.Mmap(null, mappedLength, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous, -1, 0);
        if (mapping == LibC.MapFailed) throw new IOException($"mmap of {mappedLength} bytes for {path} failed (errno {Marshal.GetLastPInvokeError()})");
        var start = (byte*)(((nuint)mapping + HugePage - 1) & ~(HugePage - 1));
        var bytes = new HugePageFileBytes((nint)mapping, mappedLength, start, (int)length);
        try
        {
            LibC.Madvise(start, (nuint)length, LibC.MadviseHugePage);
            var span = new Span<byte>(start, (int)length);
            var read = 0;
            while (read < span.Length)
            {
                var n = RandomAccess.Read(file, span[read..], read);
                if (n == 0) throw new IOException($"{path} ended at byte {read} of {length}");
                read += n;
            }
            return bytes;
        }
        catch
        {
            bytes.Dispose();
            throw;
        }
    }

    protected override bool ReleaseHandle() => LibC.Munmap((void*)handle, _mappedLength) == 0;
}
