namespace Pyprobe.Python.Metrics;

/// <summary>
/// Which series of one process get their own labels: at most 2N, always including the current top N. A chosen
/// series is kept while there is room (so it does not vanish and reappear as rankings wobble); when a key enters the
/// top N and all 2N places are taken, the chosen key ranked lowest outside the top N makes way. Its counts then go to
/// the <c>&lt;other&gt;</c> series (which only grows by that); a key that gets its own series takes its counts out of
/// <c>&lt;other&gt;</c>, which Prometheus sees as one counter reset of <c>&lt;other&gt;</c>.
/// </summary>
internal sealed class StickyTopN<TKey>(int limit) where TKey : notnull
{
    private readonly HashSet<TKey> _chosen = [];

    /// <summary>Updates the choice from <paramref name="heaviestFirst"/> (every key, by cumulative weight); returns the chosen set.</summary>
    public IReadOnlySet<TKey> Choose(IEnumerable<TKey> heaviestFirst)
    {
        var ranking = heaviestFirst.ToList();
        var top = Math.Min(limit, ranking.Count);
        Dictionary<TKey, int>? rank = null;
        for (var i = 0; i < top; i++)
        {
            var key = ranking[i];
            if (_chosen.Contains(key)) continue;
            if (_chosen.Count >= 2 * limit)
            {
                rank ??= ranking.Select((k, r) => (k, r)).ToDictionary(x => x.k, x => x.r);
                var lowest = _chosen.MaxBy(k => rank.GetValueOrDefault(k, int.MaxValue));
                if (lowest is null || rank.GetValueOrDefault(lowest, int.MaxValue) < limit) continue;
                _chosen.Remove(lowest);
            }
            _chosen.Add(key);
        }
        return _chosen;
    }
}
