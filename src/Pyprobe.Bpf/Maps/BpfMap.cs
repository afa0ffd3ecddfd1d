using System.Text;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Maps;

/// <summary>A BPF map. Disposing it closes the fd; the kernel frees the map once no program uses it.</summary>
public sealed unsafe class BpfMap : IDisposable
{
    private BpfMap(MapSpec spec, KernelFileDescriptor fd)
    {
        Spec = spec;
        Fd = fd;
    }

    public MapSpec Spec { get; }
    public KernelFileDescriptor Fd { get; }

    /// <summary>Bytes of one value as seen from user space: per-CPU maps return one 8-byte-aligned slot per possible CPU.</summary>
    public int UserValueSize => Spec.Type is MapType.PerCpuArray or MapType.PerCpuHash
        ? (int)((Spec.ValueSize + 7) / 8 * 8) * PossibleCpus.Count
        : (int)Spec.ValueSize;

    public static BpfMap Create(MapSpec spec)
    {
        var attr = new MapCreateAttr
        {
            MapType = (uint)spec.Type,
            KeySize = spec.KeySize,
            ValueSize = spec.ValueSize,
            MaxEntries = spec.MaxEntries,
            MapFlags = spec.Flags,
        };
        ObjectName.Write(spec.Name, attr.MapName);
        var fd = BpfSyscall.CreateFd(BpfCommand.MapCreate, ref attr, spec, static s => $"creating {s.Type} map '{s.Name}'");
        return new BpfMap(spec, fd);
    }

    /// <summary>Reads the value for <paramref name="key"/> into <paramref name="value"/>; false if absent.</summary>
    public bool TryLookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        CheckSizes(key, value.Length);
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            var attr = new MapElemAttr { MapFd = (uint)Fd.Value, Key = (ulong)k, ValueOrNextKey = (ulong)v };
            var result = BpfSyscall.Invoke(BpfCommand.MapLookupElem, ref attr);
            if (result == -(int)Errno.ENOENT) return false;
            if (result < 0) throw new SyscallException($"bpf(MapLookupElem) on '{Spec.Name}'", (int)-result);
            return true;
        }
    }

    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = 0)
    {
        CheckSizes(key, value.Length);
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            var attr = new MapElemAttr { MapFd = (uint)Fd.Value, Key = (ulong)k, ValueOrNextKey = (ulong)v, Flags = flags };
            BpfSyscall.InvokeOrThrow(BpfCommand.MapUpdateElem, ref attr, Spec, static s => $"map '{s.Name}'");
        }
    }

    public bool Delete(ReadOnlySpan<byte> key)
    {
        if (key.Length != Spec.KeySize) throw new ArgumentException($"map '{Spec.Name}' has {Spec.KeySize}-byte keys, got {key.Length}");
        fixed (byte* k = key)
        {
            var attr = new MapElemAttr { MapFd = (uint)Fd.Value, Key = (ulong)k };
            var result = BpfSyscall.Invoke(BpfCommand.MapDeleteElem, ref attr);
            if (result == -(int)Errno.ENOENT) return false;
            if (result < 0) throw new SyscallException($"bpf(MapDeleteElem) on '{Spec.Name}'", (int)-result);
            return true;
        }
    }

    /// <summary>Enumerates keys; <paramref name="key"/> empty starts from the first one.</summary>
    public bool TryGetNextKey(ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        fixed (byte* k = key)
        fixed (byte* n = nextKey)
        {
            var attr = new MapElemAttr { MapFd = (uint)Fd.Value, Key = key.IsEmpty ? 0 : (ulong)k, ValueOrNextKey = (ulong)n };
            var result = BpfSyscall.Invoke(BpfCommand.MapGetNextKey, ref attr);
            if (result == -(int)Errno.ENOENT) return false;
            if (result < 0) throw new SyscallException($"bpf(MapGetNextKey) on '{Spec.Name}'", (int)-result);
            return true;
        }
    }

    /// <summary>Sums a per-CPU array slot of u64 counters at <paramref name="index"/> across all CPUs.</summary>
    public ulong SumPerCpuCounter(uint index, int counterOffset = 0)
    {
        Span<byte> value = stackalloc byte[UserValueSize];
        if (!TryLookup(BitConverter.GetBytes(index), value)) return 0;
        return SumCounters(value, (int)((Spec.ValueSize + 7) / 8 * 8), PossibleCpus.Count, counterOffset);
    }

    /// <summary>The u64 at <paramref name="offset"/> of each of <paramref name="count"/> values <paramref name="stride"/> bytes apart, summed.</summary>
    internal static ulong SumCounters(ReadOnlySpan<byte> values, int stride, int count, int offset)
    {
        ulong total = 0;
        for (var i = 0; i < count; i++)
            total += BitConverter.ToUInt64(values.Slice(i * stride + offset, 8));
        return total;
    }

    private void CheckSizes(ReadOnlySpan<byte> key, int valueLength)
    {
        if (key.Length != Spec.KeySize)
            throw new ArgumentException($"map '{Spec.Name}' has {Spec.KeySize}-byte keys, got {key.Length}");
        if (valueLength != UserValueSize)
            throw new ArgumentException($"map '{Spec.Name}' has {UserValueSize}-byte values, got {valueLength}");
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of the map at <paramref name="offset"/> shared (a ring buffer's pages, an mmapable
    /// array's values); <paramref name="what"/> names the part in the error.
    /// </summary>
    internal void* MapShared(nuint length, int protection, long offset, string what)
    {
        var address = LibC.Mmap(null, length, protection, LibC.MapShared, Fd.Value, offset);
        if (address == LibC.MapFailed)
            throw new SyscallException($"mmap of {Spec.Name}'s {what}", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        return address;
    }

    public void Dispose() => Fd.Dispose();
}
