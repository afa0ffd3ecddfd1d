namespace Pyprobe.Python.Metrics;

/// <summary>
/// A histogram with fixed bounds of 2^k − 1 nanoseconds (k = 10, 12, …, 34: about 1 µs to 17 s). Durations are whole
/// nanoseconds, so "≤ 2^k − 1" is "&lt; 2^k", which is where the kernel's log-linear call buckets (4 per power of
/// two) split: every count taken from them lands in exactly the right bucket, none is estimated.
/// </summary>
/// <param name="Counts">Observations per bucket, not cumulative; the last entry is the one above every bound (+Inf).</param>
public sealed record DurationHistogram(IReadOnlyList<ulong> Counts, ulong Count, double SumSeconds)
{
    /// <summary>Upper bounds in nanoseconds, inclusive.</summary>
    public static IReadOnlyList<ulong> BoundsNs { get; } = Enumerable.Range(0, 13).Select(i => (1UL << (10 + 2 * i)) - 1).ToArray();

    /// <summary>The bucket a duration falls in (<see cref="BoundsNs"/>.Count for the +Inf bucket).</summary>
    public static int BucketOf(ulong ns)
    {
        var bounds = BoundsNs;
        for (var i = 0; i < bounds.Count; i++)
            if (ns <= bounds[i]) return i;
        return bounds.Count;
    }

    /// <summary>Re-buckets the kernel's log-linear histogram (see <see cref="Analysis.CallStatsLayout"/>); exact, see the type's remarks.</summary>
    public static DurationHistogram FromLogLinear(IReadOnlyList<ulong> logLinear, ulong timed, ulong totalNs)
    {
        var counts = new ulong[BoundsNs.Count + 1];
        for (var i = 0; i < logLinear.Count; i++)
        {
            if (logLinear[i] == 0) continue;
            // Every value of bucket i is at least its lower bound, and the bucket never straddles a 2^k bound.
            counts[BucketOf(Analysis.CallStatsLayout.BucketLowerBound(i))] += logLinear[i];
        }
        return new DurationHistogram(counts, timed, totalNs / 1e9);
    }

    /// <summary>The sum of several histograms (the functions outside the top N).</summary>
    public static DurationHistogram? Sum(IEnumerable<DurationHistogram?> histograms)
    {
        ulong[]? counts = null;
        ulong count = 0;
        double sum = 0;
        foreach (var h in histograms)
        {
            if (h is null) continue;
            counts ??= new ulong[BoundsNs.Count + 1];
            for (var i = 0; i < counts.Length; i++) counts[i] += h.Counts[i];
            count += h.Count;
            sum += h.SumSeconds;
        }
        return counts is null ? null : new DurationHistogram(counts, count, sum);
    }
}

/// <summary>A histogram being filled in user space (gc pauses), copied out into snapshots.</summary>
public sealed class DurationHistogramBuilder
{
    private readonly ulong[] _counts = new ulong[DurationHistogram.BoundsNs.Count + 1];
    private ulong _count, _sumNs;

    public void Add(ulong ns)
    {
        _counts[DurationHistogram.BucketOf(ns)]++;
        _count++;
        _sumNs += ns;
    }

    public DurationHistogram Build() => new((ulong[])_counts.Clone(), _count, _sumNs / 1e9);
}
