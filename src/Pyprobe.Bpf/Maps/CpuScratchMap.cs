namespace Pyprobe.Bpf.Maps;

/// <summary>The scratch values of a session's programs (<see cref="CpuScratchLayout"/>) and the counters they keep.</summary>
/// <param name="Map">The map, made from <see cref="Spec"/> (its owner disposes it; <see cref="Make"/>).</param>
public sealed record CpuScratchMap(BpfMap Map, CpuScratchLayout Layout)
{
    /// <summary>The map to make for programs that use <paramref name="neededBytes"/> of each CPU's value.</summary>
    /// <exception cref="InvalidOperationException">The layout's values are smaller than that (a program would write past its value).</exception>
    public static MapSpec Spec(string name, CpuScratchLayout layout, int neededBytes) =>
        neededBytes <= layout.ValueBytes
            ? layout.Spec(name)
            : throw new InvalidOperationException($"scratch '{name}' needs {neededBytes} bytes a CPU, its layout has {layout.ValueBytes}");

    /// <summary>Makes the map with <paramref name="create"/> (a session's, which then owns it) from <see cref="Spec"/>.</summary>
    public static CpuScratchMap Make(string name, CpuScratchLayout layout, int neededBytes, Func<MapSpec, BpfMap> create) =>
        new(create(Spec(name, layout, neededBytes)), layout);

    /// <summary>The u64 counter at <paramref name="offset"/> of every CPU's value, summed.</summary>
    public ulong SumCounter(int offset)
    {
        if (!Layout.Sliced) return Map.SumPerCpuCounter(0, offset);
        var value = new byte[Map.UserValueSize];
        return Map.TryLookup(BitConverter.GetBytes(0u), value) ? BpfMap.SumCounters(value, Layout.Stride, Layout.Cpus, offset) : 0;
    }
}
