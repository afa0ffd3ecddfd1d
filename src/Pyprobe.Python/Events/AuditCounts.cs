namespace Pyprobe.Python.Events;

/// <summary>What audit reports at the end: how often each event happened.</summary>
public sealed class AuditCounts
{
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);

    /// <summary>Events counted (those shown, after --event).</summary>
    public long Events { get; private set; }

    /// <summary>Most frequent first, then by name.</summary>
    public IReadOnlyList<KeyValuePair<string, long>> ByCount =>
        _counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList();

    public void Add(string name)
    {
        Events++;
        _counts[name] = _counts.GetValueOrDefault(name) + 1;
    }
}
