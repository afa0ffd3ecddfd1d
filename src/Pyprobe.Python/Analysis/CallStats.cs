namespace Pyprobe.Python.Analysis;

/// <summary>
/// Call statistics of one Python function in one process, as aggregated in the kernel since attach (or the
/// last reset). Durations are wall-clock nanoseconds from entry to return (to yield, for a generator resume).
/// </summary>
/// <param name="Pid">Process (tgid).</param>
/// <param name="Filename">co_filename.</param>
/// <param name="Funcname">co_name (not the qualified name: methods show their bare name).</param>
/// <param name="Lineno">
/// The line function__entry reported: the def line for a fresh frame (0 for a 3.15 <c>&lt;module&gt;</c>); on
/// 3.9–3.11 a generator resumed after its first yield reports the line it resumes at, so its later resumes form
/// their own row. Null when only returns were seen (the first line is then unknown).
/// </param>
/// <param name="Count">Calls: every return seen, timed or not.</param>
/// <param name="TimedCount">Calls whose entry was seen too, so they have a duration.</param>
/// <param name="TotalNs">Sum of inclusive durations of the timed calls (a recursive call counts at every level); null when none.</param>
/// <param name="SelfNs">Sum of exclusive durations: inclusive minus the time in Python callees that were timed.</param>
/// <param name="Histogram">Timed calls per log-linear bucket (see <see cref="CallStatsLayout.BucketLowerBound"/>); empty when none.</param>
/// <param name="UntimedReason">Why some or all calls have no duration; null when every call is timed.</param>
public sealed record FunctionStats(
    int Pid,
    string Filename,
    string Funcname,
    int? Lineno,
    ulong Count,
    ulong TimedCount,
    ulong? TotalNs,
    ulong? SelfNs,
    double? MeanNs,
    ulong? MinNs,
    ulong? MaxNs,
    ulong? P50Ns,
    ulong? P90Ns,
    ulong? P99Ns,
    IReadOnlyList<ulong> Histogram,
    string? UntimedReason)
{
    /// <summary>Calls counted from a return alone.</summary>
    public ulong UntimedCount => Count - TimedCount;

    /// <summary>True when no call of this function has a duration.</summary>
    public bool HasTimes => TimedCount > 0;

    /// <summary>Nearest-rank quantile from the histogram, interpolated inside its bucket and clamped to [min, max].</summary>
    public ulong? Quantile(double q) => CallStatsMath.Quantile(Histogram, TimedCount, MinNs, MaxNs, q);
}

/// <summary>One snapshot of a <see cref="CallStatsSession"/>.</summary>
/// <param name="Functions">Per function, most total time first (then most calls).</param>
/// <param name="LostNameRecords">Name records the ring could not take; those functions' names were read from the process instead, or show as addresses.</param>
/// <param name="UnmatchedReturns">Returns with no matching frame on the thread's stack (counted, untimed).</param>
/// <param name="OverflowEntries">Entries deeper than the kernel stack (their calls are counted, untimed).</param>
/// <param name="DiscardedFrames">Frames dropped because a return matched a frame below them (3.15 generator creation).</param>
/// <param name="StatsMapFull">Calls not counted: the kernel had no entry for them and the ring to user space was full.</param>
/// <param name="NoStackSlot">Entries dropped because no thread stack could be allocated.</param>
public sealed record CallStats(
    IReadOnlyList<FunctionStats> Functions,
    ulong LostNameRecords,
    ulong UnmatchedReturns,
    ulong OverflowEntries,
    ulong DiscardedFrames,
    ulong StatsMapFull,
    ulong NoStackSlot);

internal static class CallStatsMath
{
    public static ulong? Quantile(IReadOnlyList<ulong> histogram, ulong timed, ulong? min, ulong? max, double q)
    {
        if (timed == 0 || histogram.Count == 0) return null;
        var rank = Math.Max(1UL, (ulong)Math.Ceiling(q * timed));
        ulong cumulative = 0;
        for (var i = 0; i < histogram.Count; i++)
        {
            var n = histogram[i];
            if (n == 0) continue;
            if (cumulative + n >= rank)
            {
                var lo = CallStatsLayout.BucketLowerBound(i);
                var hi = i + 1 < CallStatsLayout.BucketCount ? CallStatsLayout.BucketUpperBound(i) : Math.Max(lo + 1, max ?? lo + 1);
                var fraction = (double)(rank - cumulative) / n;
                var value = (ulong)(lo + (hi - lo) * fraction);
                if (min is ulong mn && value < mn) value = mn;
                if (max is ulong mx && value > mx) value = mx;
                return value;
            }
            cumulative += n;
        }
        return max;
    }
}
