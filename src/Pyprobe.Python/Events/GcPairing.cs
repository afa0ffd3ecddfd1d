namespace Pyprobe.Python.Events;

/// <summary>One garbage collection: gc__start and gc__done of the same thread.</summary>
public readonly record struct GcCollection(ulong Timestamp, int Pid, int Tid, int Generation, ulong DurationNs, long Collected);

/// <summary>
/// Pairs gc__start with the next gc__done of the same thread into a <see cref="GcCollection"/>. A done
/// without its start (the collection began before pyprobe attached) is dropped.
/// </summary>
public sealed class GcPairing
{
    public static readonly IReadOnlyList<string> Probes = ["gc__start", "gc__done"];

    private readonly Dictionary<(int, int), (ulong Ts, int Generation)> _started = [];

    /// <summary>The collection <paramref name="e"/> completes, or null.</summary>
    public GcCollection? Apply(in ProbeEvent e)
    {
        var key = (e.Pid, e.Tid);
        if (e.Name == "gc__start")
        {
            _started[key] = (e.Timestamp, (int)e.Value(0));
            return null;
        }
        if (!_started.Remove(key, out var start)) return null;
        return new GcCollection(start.Ts, e.Pid, e.Tid, start.Generation, e.Timestamp - start.Ts, e.Value(0));
    }
}
