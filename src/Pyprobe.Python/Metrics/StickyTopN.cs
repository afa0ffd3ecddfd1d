namespace Pyprobe.Python.Metrics;

/// <summary>
/// Which series of one process get their own labels. Chosen series are kept (a function dropped from the list would
/// make its counter vanish and reappear); one that ranks in the current top N is added while fewer than 2N are
/// chosen, so a function that becomes hot late still gets its series. Cardinality stays at most 2N + 1 per process.
/// When a function is added, the <c>&lt;other&gt;</c> series loses its calls once (a counter reset to Prometheus);
/// that happens at most 2N times in a process's life.
/// </summary>
internal sealed class StickyTopN<TKey>(int limit) where TKey : notnull
{
    private readonly HashSet<TKey> _chosen = [];

    /// <summary>Chooses from <paramref name="heaviestFirst"/>; returns the chosen set.</summary>
    public IReadOnlySet<TKey> Choose(IEnumerable<TKey> heaviestFirst)
    {
        var rank = 0;
        foreach (var key in heaviestFirst)
        {
            if (rank++ >= limit || _chosen.Count >= 2 * limit) break;
            _chosen.Add(key);
        }
        return _chosen;
    }
}
