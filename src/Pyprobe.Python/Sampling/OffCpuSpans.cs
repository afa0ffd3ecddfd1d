using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Sampling;

/// <summary>An off-CPU span that ended: whose, with which stack (root first; null when it had no Python frame), and what it counts for.</summary>
/// <param name="Samples">The span in sample-equivalents at the recording's rate.</param>
public readonly record struct ClosedSpan(int Pid, int Tid, StackFrame[]? Stack, bool Truncated, long Samples, ulong DurationNs);

/// <summary>
/// The time each thread spends off its CPU, in wall-clock recordings: a span opens when the thread leaves its
/// CPU (with the stack it left with) and closes when it comes back, when its process goes away, or when the
/// recording stops. A span counts as many samples as the CPU clock would have taken had the thread been
/// running (duration × rate), so CPU samples and off-CPU time add up to wall-clock time per thread. The
/// fraction of a sample left over is carried per thread to its next span, so many short sleeps add up right.
/// </summary>
public sealed class OffCpuSpans(int rateHz)
{
    private const long NanosPerSecond = 1_000_000_000;
    private readonly Dictionary<int, OpenSpan> _open = [];
    private readonly Dictionary<int, long> _carry = [];

    private sealed record OpenSpan(int Pid, ulong StartNs, StackFrame[]? Stack, bool Truncated);

    /// <summary>Threads off their CPU now (as far as the records read so far say).</summary>
    public int OpenCount => _open.Count;

    /// <summary>
    /// Thread <paramref name="tid"/> left its CPU at <paramref name="startNs"/>. A span still open (its switch-in
    /// was lost, or it was opened from a snapshot the thread has since left) is dropped, not counted.
    /// </summary>
    public void Open(int pid, int tid, ulong startNs, StackFrame[]? rootFirstStack, bool truncated) =>
        _open[tid] = new OpenSpan(pid, startNs, rootFirstStack, truncated);

    /// <summary>
    /// Thread <paramref name="tid"/> came back on a CPU at <paramref name="endNs"/>: its span, or null when none was
    /// open or the open one started later (a switch-in from before a snapshot's span).
    /// </summary>
    public ClosedSpan? Close(int tid, ulong endNs)
    {
        if (!_open.TryGetValue(tid, out var span) || endNs < span.StartNs) return null;
        _open.Remove(tid);
        return Finish(tid, span, endNs);
    }

    /// <summary>Closes every open span (of <paramref name="pid"/> only, when given) at <paramref name="endNs"/>.</summary>
    public List<ClosedSpan> CloseAll(ulong endNs, int? pid = null)
    {
        var closed = new List<ClosedSpan>();
        foreach (var (tid, span) in _open.Where(o => pid is null || o.Value.Pid == pid).ToList())
        {
            _open.Remove(tid);
            if (endNs >= span.StartNs) closed.Add(Finish(tid, span, endNs));
        }
        return closed;
    }

    private ClosedSpan Finish(int tid, OpenSpan span, ulong endNs)
    {
        var duration = endNs - span.StartNs;
        // Rounded to the nearest sample over a thread's spans: the carry starts at half a sample.
        var carry = _carry.TryGetValue(tid, out var c) ? c : NanosPerSecond / 2;
        carry += (long)Math.Min(duration, (ulong)long.MaxValue / (ulong)Math.Max(rateHz, 1)) * rateHz;
        var samples = carry / NanosPerSecond;
        _carry[tid] = carry % NanosPerSecond;
        return new ClosedSpan(span.Pid, tid, span.Stack, span.Truncated, samples, duration);
    }
}
