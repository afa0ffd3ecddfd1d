using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// A process's pending tasks as one pass read them (<see cref="AsyncTaskReader.ReadAll"/>), with who awaits whom: the
/// chain of awaiters <c>record --tasks</c> roots a task's samples at (<see cref="RunningTaskNames"/>' form).
/// </summary>
internal sealed class TaskForest
{
    private readonly Dictionary<ulong, AsyncTask> _byId = [];
    private readonly Dictionary<ulong, List<AsyncTask>> _awaiters = [];

    public TaskForest(IReadOnlyList<AsyncTask> tasks)
    {
        foreach (var task in tasks) _byId.TryAdd(task.Id, task);
        foreach (var task in _byId.Values)
            foreach (var awaited in task.WaitsFor.Distinct())
                if (_byId.ContainsKey(awaited))
                    (_awaiters.TryGetValue(awaited, out var list) ? list : _awaiters[awaited] = []).Add(task);
    }

    public IEnumerable<AsyncTask> Tasks => _byId.Values;

    /// <summary>Whether the task waits for another of these tasks (its time is then theirs).</summary>
    public bool WaitsForATask(AsyncTask task) => task.WaitsFor.Any(_byId.ContainsKey);

    /// <summary>
    /// Root first: the task's outermost awaiter's <c>task NAME</c> and the frames it awaits in, and so on down to the task's
    /// own <c>task NAME</c> (a task awaited by several goes under the first by name, saying how many); with
    /// <paramref name="ownFrames"/>, the task's own frames after it.
    /// </summary>
    public StackFrame[] Chain(AsyncTask task, bool ownFrames)
    {
        var innermostFirst = new List<StackFrame>();
        var seen = new HashSet<ulong>();
        for (var at = task; at is not null && seen.Count < RunningTaskNames.MaxChain && seen.Add(at.Id);)
        {
            if (at != task || ownFrames) innermostFirst.AddRange(at.Frames);
            var above = _awaiters.GetValueOrDefault(at.Id) ?? [];
            innermostFirst.Add(StackFrame.TaskRoot(at.Name, above.Count));
            at = above.Count == 0 ? null : above.MinBy(a => a.Name, StringComparer.Ordinal);
        }
        innermostFirst.Reverse();
        return [.. innermostFirst];
    }
}
