namespace Pyprobe.Python.Events;

/// <summary>
/// Per-thread call stacks rebuilt from function__entry/function__return in user space, which give each event its
/// depth and each return its duration. A return pairs with the nearest of the top few frames of the same code
/// object — same filename and name, and the same first line where both events carry it
/// (<see cref="ProbeEvent.KeyedByCodeObject"/>; else by name): frames above it never returned (a 3.15 generator's
/// creation where the kernel could not tell it) and are dropped. A return that pairs with nothing (the call began
/// before tracing, or a 3.15 throw(), which has no entry) keeps the current depth and has no duration.
/// </summary>
public sealed class CallStacks
{
    /// <summary>How far below the top a return may find its entry (same window as the kernel's call statistics).</summary>
    private const int MatchWindow = 4;

    private readonly Dictionary<(int Pid, int Tid), List<Frame>> _threads = [];

    /// <param name="FirstLine">The code object's first line, or null when the entry carried the probe's line.</param>
    private readonly record struct Frame(ulong Timestamp, string Filename, string Funcname, long? FirstLine);

    /// <summary>What one event means for its thread.</summary>
    /// <param name="Depth">Indentation level: the number of open calls below this one.</param>
    /// <param name="DurationNs">For a paired return, entry to return in nanoseconds.</param>
    /// <param name="Dropped">Frames dropped because this return matched below them.</param>
    public readonly record struct Step(bool IsEntry, int Depth, ulong? DurationNs, int Dropped);

    public Step Apply(in ProbeEvent e)
    {
        var key = (e.Pid, e.Tid);
        if (!_threads.TryGetValue(key, out var stack)) _threads[key] = stack = [];
        var filename = e.String(0);
        var funcname = e.String(1);
        if (e.Name == "function__entry")
        {
            stack.Add(new Frame(e.Timestamp, filename, funcname, e.KeyedByCodeObject ? e.Value(2) : null));
            return new Step(true, stack.Count - 1, null, 0);
        }
        long? firstLine = e.KeyedByCodeObject ? e.Value(2) : null;
        for (var i = stack.Count - 1; i >= 0 && i >= stack.Count - MatchWindow; i--)
        {
            var frame = stack[i];
            if (frame.Funcname != funcname || frame.Filename != filename) continue;
            if (frame.FirstLine is long entered && firstLine is long returned && entered != returned) continue;
            var dropped = stack.Count - 1 - i;
            stack.RemoveRange(i, stack.Count - i);
            var duration = e.Timestamp >= frame.Timestamp ? e.Timestamp - frame.Timestamp : 0;
            return new Step(false, i, duration, dropped);
        }
        return new Step(false, stack.Count, null, 0);
    }
}
