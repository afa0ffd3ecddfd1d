namespace Pyprobe.Python.Events;

/// <summary>One generation's collections: how many, their total and longest pause, objects collected.</summary>
public readonly record struct GcGeneration(int Generation, long Count, ulong TotalNs, ulong MaxNs, long Collected);

/// <summary>What gc reports at the end: collections per generation and a pause histogram.</summary>
public sealed class GcSummary
{
    private readonly SortedDictionary<int, GcGeneration> _generations = [];

    public long Collections { get; private set; }
    public PauseHistogram Pauses { get; } = new();

    /// <summary>Per generation, lowest first.</summary>
    public IEnumerable<GcGeneration> Generations => _generations.Values;

    public void Add(in GcCollection c)
    {
        Collections++;
        var g = _generations.GetValueOrDefault(c.Generation, new GcGeneration(c.Generation, 0, 0, 0, 0));
        _generations[c.Generation] = g with { Count = g.Count + 1, TotalNs = g.TotalNs + c.DurationNs, MaxNs = Math.Max(g.MaxNs, c.DurationNs), Collected = g.Collected + c.Collected };
        Pauses.Add(c.DurationNs);
    }
}

/// <summary>Pauses in power-of-two microsecond buckets, as bcc's histograms count them.</summary>
public sealed class PauseHistogram
{
    private readonly long[] _buckets = new long[64];
    public long Count { get; private set; }

    public void Add(ulong ns)
    {
        var us = ns / 1000;
        var bucket = us == 0 ? 0 : 64 - System.Numerics.BitOperations.LeadingZeroCount(us);
        _buckets[bucket]++;
        Count++;
    }

    /// <summary>(low, high, count) per bucket from the first to the last non-empty one, in microseconds.</summary>
    public IEnumerable<(ulong Low, ulong High, long Count)> Buckets()
    {
        var first = Array.FindIndex(_buckets, c => c > 0);
        var last = Array.FindLastIndex(_buckets, c => c > 0);
        if (first < 0) yield break;
        for (var b = first; b <= last; b++)
            yield return (b == 0 ? 0 : 1UL << (b - 1), b == 0 ? 0 : (1UL << b) - 1, _buckets[b]);
    }
}
