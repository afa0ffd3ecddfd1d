using Pyprobe.Python.Events;

namespace Pyprobe.Python.Metrics;

/// <summary>
/// Running totals of the rare events per process: collections per generation with their pauses (gc__start paired
/// with gc__done of the same thread), module loads, audit events by name. Fed by the collector thread only.
/// </summary>
internal sealed class EventCounts
{
    private sealed class Process
    {
        public readonly SortedDictionary<int, (ulong Collections, DurationHistogramBuilder Pauses)> Gc = [];
        public readonly Dictionary<string, ulong> Audit = new(StringComparer.Ordinal);
        public ulong Imports;
    }

    private readonly Dictionary<int, Process> _processes = [];
    private readonly GcPairing _gc = new();

    public void Add(in ProbeEvent e)
    {
        switch (e.Name)
        {
            case "gc__start":
            case "gc__done":
                if (_gc.Apply(in e) is { } collection)
                {
                    var gc = Of(e.Pid).Gc;
                    if (!gc.TryGetValue(collection.Generation, out var entry)) entry = (0, new DurationHistogramBuilder());
                    entry.Pauses.Add(collection.DurationNs);
                    gc[collection.Generation] = (entry.Collections + 1, entry.Pauses);
                }
                break;
            case "import__find__load__start":
                Of(e.Pid).Imports++;
                break;
            case "audit":
                var audit = Of(e.Pid).Audit;
                var name = e.String(0);
                audit[name] = audit.GetValueOrDefault(name) + 1;
                break;
        }
    }

    public IReadOnlyList<GcGeneration> Gc(int pid) =>
        _processes.TryGetValue(pid, out var p) ? p.Gc.Select(g => new GcGeneration(g.Key, g.Value.Collections, g.Value.Pauses.Build())).ToList() : [];

    public ulong Imports(int pid) => _processes.TryGetValue(pid, out var p) ? p.Imports : 0;

    public IReadOnlyDictionary<string, ulong> Audit(int pid) =>
        _processes.TryGetValue(pid, out var p) ? p.Audit : new Dictionary<string, ulong>();

    public void Forget(int pid) => _processes.Remove(pid);

    private Process Of(int pid)
    {
        if (!_processes.TryGetValue(pid, out var p)) _processes[pid] = p = new Process();
        return p;
    }
}
