namespace Pyprobe.Python.Events;

/// <summary>One module load: import__find__load__start and __done of the same thread, with its place in the import tree.</summary>
/// <param name="DurationNs">From start to done, including the modules it imported.</param>
/// <param name="SelfNs">Without the loads it caused (nested imports).</param>
/// <param name="Depth">0 for a module imported by code; 1 for one imported while another was loading, …</param>
/// <param name="Parent">The module whose loading imported this one, or null.</param>
public sealed record ModuleLoad(ulong Timestamp, int Pid, int Tid, string Module, bool Found, ulong DurationNs, ulong SelfNs, int Depth, string? Parent);

/// <summary>Pairs import__find__load__start/done per thread into <see cref="ModuleLoad"/>s with their nesting.</summary>
public sealed class ImportTracker
{
    private sealed class Pending(string module, ulong start)
    {
        public string Module { get; } = module;
        public ulong Start { get; } = start;
        public ulong Children { get; set; }
    }

    public static readonly IReadOnlyList<string> Probes = ["import__find__load__start", "import__find__load__done"];

    private readonly Dictionary<(int, int), List<Pending>> _stacks = [];

    /// <summary>The load <paramref name="e"/> completes, or null.</summary>
    public ModuleLoad? Apply(in ProbeEvent e)
    {
        if (e.Name == "import__find__load__start")
        {
            Start(e.Pid, e.Tid, e.String(0), e.Timestamp);
            return null;
        }
        return Done(e.Pid, e.Tid, e.String(0), e.Value(1) != 0, e.Timestamp);
    }

    public void Start(int pid, int tid, string module, ulong ts)
    {
        if (!_stacks.TryGetValue((pid, tid), out var stack)) _stacks[(pid, tid)] = stack = [];
        stack.Add(new Pending(module, ts));
    }

    /// <summary>The finished load, or null when its start was not seen (it began before pyprobe attached).</summary>
    public ModuleLoad? Done(int pid, int tid, string module, bool found, ulong ts)
    {
        if (!_stacks.TryGetValue((pid, tid), out var stack)) return null;
        var index = stack.FindLastIndex(p => p.Module == module);
        if (index < 0) return null;
        var pending = stack[index];
        stack.RemoveRange(index, stack.Count - index);
        var duration = ts - pending.Start;
        Pending? parent = index > 0 ? stack[index - 1] : null;
        if (parent is not null) parent.Children += duration;
        if (stack.Count == 0) _stacks.Remove((pid, tid));
        return new ModuleLoad(pending.Start, pid, tid, module, found, duration, duration - Math.Min(duration, pending.Children), index, parent?.Module);
    }
}
