namespace Pyprobe.Cli.Output.Timeline;

/// <summary>A call entered and not yet returned: what its slice needs when it ends.</summary>
internal readonly record struct OpenCall(ulong StartNs, string Filename, string Funcname, long Line);

/// <summary>
/// The open calls of every thread, kept in step with <see cref="Pyprobe.Python.Events.CallStacks"/> through its
/// depths: an entry at depth d is the d-th open call, a return that paired at depth d ends it (the calls above it
/// never returned). Memory is the open calls only: as deep as the programs' stacks, not as long as the trace.
/// </summary>
internal sealed class OpenCalls
{
    private readonly Dictionary<(int Pid, int Tid), List<OpenCall>> _threads = [];

    /// <summary>Opens <paramref name="call"/> at <paramref name="depth"/>; calls still open at or above it never returned and are handed back.</summary>
    public IReadOnlyList<OpenCall> Enter(int pid, int tid, int depth, OpenCall call)
    {
        var stack = Stack(pid, tid);
        var abandoned = Cut(stack, depth);
        stack.Add(call);
        return abandoned;
    }

    /// <summary>Ends the call at <paramref name="depth"/> and returns it (null if there is none), with the calls above it, which never returned.</summary>
    public (OpenCall? Call, IReadOnlyList<OpenCall> Abandoned) Return(int pid, int tid, int depth)
    {
        var stack = Stack(pid, tid);
        if (depth >= stack.Count) return (null, []);
        var call = stack[depth];
        var abandoned = Cut(stack, depth + 1);
        stack.RemoveAt(depth);
        return (call, abandoned);
    }

    /// <summary>Every call still open, per thread from the outermost in, and forgets them.</summary>
    public IEnumerable<(int Pid, int Tid, OpenCall Call)> TakeAll()
    {
        foreach (var ((pid, tid), stack) in _threads)
            foreach (var call in stack)
                yield return (pid, tid, call);
        _threads.Clear();
    }

    private List<OpenCall> Stack(int pid, int tid)
    {
        if (!_threads.TryGetValue((pid, tid), out var stack)) _threads[(pid, tid)] = stack = [];
        return stack;
    }

    private static IReadOnlyList<OpenCall> Cut(List<OpenCall> stack, int depth)
    {
        if (depth >= stack.Count) return [];
        var above = stack.GetRange(depth, stack.Count - depth);
        stack.RemoveRange(depth, stack.Count - depth);
        return above;
    }
}
