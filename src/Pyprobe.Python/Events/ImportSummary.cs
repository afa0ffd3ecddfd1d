namespace Pyprobe.Python.Events;

/// <summary>What imports reports at the end: how many modules were loaded, how many not found, the slowest.</summary>
public sealed class ImportSummary(int slowest)
{
    private readonly List<ModuleLoad> _loads = [];

    public int Modules => _loads.Count;
    public int NotFound => _loads.Count(m => !m.Found);

    /// <summary>The slowest loads (cumulative time), at most the number asked for.</summary>
    public IReadOnlyList<ModuleLoad> Slowest => _loads.OrderByDescending(m => m.DurationNs).Take(slowest).ToList();

    public void Add(ModuleLoad m) => _loads.Add(m);
}
