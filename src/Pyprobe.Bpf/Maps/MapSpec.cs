namespace Pyprobe.Bpf.Maps;

/// <summary>What to create; <see cref="BpfMap.Create"/> turns it into a kernel object.</summary>
public sealed record MapSpec(string Name, MapType Type, uint KeySize, uint ValueSize, uint MaxEntries, uint Flags = 0)
{
    public static MapSpec Array(string name, uint valueSize, uint entries) => new(name, MapType.Array, 4, valueSize, entries);
    public static MapSpec PerCpuArray(string name, uint valueSize, uint entries) => new(name, MapType.PerCpuArray, 4, valueSize, entries);
    public static MapSpec Hash(string name, uint keySize, uint valueSize, uint entries) => new(name, MapType.Hash, keySize, valueSize, entries);

    /// <summary>An array user space can mmap (BPF_F_MMAPABLE): each value starts <paramref name="valueSize"/> bytes after the last.</summary>
    public static MapSpec MmapableArray(string name, uint valueSize, uint entries) => new(name, MapType.Array, 4, valueSize, entries, Mmapable);

    /// <summary>BPF_F_MMAPABLE.</summary>
    public const uint Mmapable = 1 << 10;

    /// <summary>BPF_F_NO_PREALLOC: a hash's elements are allocated as they are added, not all when it is made.</summary>
    public const uint NoPrealloc = 1;

    /// <summary>
    /// A hash whose elements are allocated as they are added (BPF_F_NO_PREALLOC): making it costs nothing, where a
    /// preallocated or LRU hash writes every element first (2^18 small ones took 40–50 ms on a VM). Entries stay until
    /// deleted; a full map refuses new ones.
    /// </summary>
    public static MapSpec GrowingHash(string name, uint keySize, uint valueSize, uint maxEntries) => new(name, MapType.Hash, keySize, valueSize, maxEntries, NoPrealloc);

    /// <summary>A ring buffer of <paramref name="bytes"/> (a power of two, a multiple of the page size).</summary>
    public static MapSpec RingBuffer(string name, uint bytes) => new(name, MapType.RingBuffer, 0, 0, bytes);
}
