namespace Pyprobe.Bpf.Maps;

/// <summary>
/// Where a program finds its CPU's scratch value (counters, the record it builds). Sliced: one value of a one-entry
/// array holds a slice per possible CPU, and a program takes the value's address as a constant (BPF_PSEUDO_MAP_VALUE)
/// plus CPU × <see cref="Stride"/>: no key on the stack, no lookup through the map's header. A per-CPU array needs both,
/// and on a guest whose trap leaves every page a program touches cold, the stack page and the header's line were a
/// sixth of an event's program time (docs/facts.md). Where the slices would not fit one value on every kernel, the
/// per-CPU array it is.
/// </summary>
/// <param name="ValueBytes">The bytes each CPU's scratch holds.</param>
/// <param name="Stride">Bytes from one CPU's slice to the next: <paramref name="ValueBytes"/> rounded up to a cache line.</param>
/// <param name="Cpus">Possible CPUs (the highest CPU number plus one): the slices.</param>
/// <param name="Sliced">Slices of one value; false: a per-CPU array with one value of <paramref name="ValueBytes"/>.</param>
public sealed record CpuScratchLayout(int ValueBytes, int Stride, int Cpus, bool Sliced)
{
    /// <summary>The largest array value every supported kernel makes (KMALLOC_MAX_SIZE on x86-64; later kernels take more).</summary>
    public const int MaxSlicedBytes = 4 << 20;

    /// <summary>Set to <c>per-cpu</c>, programs use the per-CPU array even where slices fit (how the tests reach that path).</summary>
    public const string Variable = "PYPROBE_SCRATCH";

    private const int CacheLine = 64;

    /// <summary>The layout for scratch values of <paramref name="valueBytes"/> on this machine.</summary>
    public static CpuScratchLayout For(int valueBytes) => For(valueBytes, PossibleCpus.Count, Environment.GetEnvironmentVariable(Variable) == "per-cpu");

    public static CpuScratchLayout For(int valueBytes, int cpus, bool perCpuArray)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(valueBytes, 8);
        ArgumentOutOfRangeException.ThrowIfLessThan(cpus, 1);
        var stride = (valueBytes + CacheLine - 1) / CacheLine * CacheLine;
        return new CpuScratchLayout(valueBytes, stride, cpus, !perCpuArray && (long)stride * cpus <= MaxSlicedBytes);
    }

    /// <summary>The map that holds the scratch values.</summary>
    public MapSpec Spec(string name) => Sliced
        ? MapSpec.Array(name, (uint)(Stride * Cpus), 1)
        : MapSpec.PerCpuArray(name, (uint)ValueBytes, 1);
}
