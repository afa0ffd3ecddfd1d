using Stopwatch = System.Diagnostics.Stopwatch;
using Pyprobe.Python.Objects;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// <c>record --tasks</c>: the tasks samples were taken in (the kernel sends each sample's running task's address) and the
/// tasks awaiting them, read from the process when its samples are added. Each task names the tasks that await it
/// (3.14+ <c>task_awaited_by</c>: set by <c>await task</c>, <c>gather()</c>, a TaskGroup's <c>create_task</c>), so a sample
/// is rooted at the outermost awaiter, then each task down to the one it ran in, each awaiter followed by the coroutine
/// frames it awaits in (<c>task main;main;TaskGroup.__aexit__;TaskGroup._aexit;task left;left;task leaf</c>, then the
/// task's own frames from its coroutine's in), as CPython's own sampler draws them. A task awaited by several tasks goes
/// under the first of them by name and says how many there are (<c>shared (2 parents)</c>), as CPython's sampler does. A
/// sample carries a copy of its task's name object as it was (<see cref="SampledTask"/>): a kept chain is taken where the
/// copy matches it, without a read, and a task gone before its samples are read goes under the chain read for it in the
/// refresh before, where there is one, else alone, by that name. Where there is no copy, a task's name is read at each
/// pass its samples are added in: a task freed and another made at its address is told apart unless it also got the
/// same name object and name, and a task gone is named by what its memory still holds, or by its address. A task's chain is read at its first sample and kept for <see cref="ChainRefresh"/>: a
/// task's awaiters as they were when (or up to 100 ms before) its samples were added.
/// </summary>
public sealed class RunningTaskNames
{
    private const int MaxNames = 1 << 16;
    /// <summary>Awaiters followed at most (a longer chain is cut at its outer end).</summary>
    public const int MaxChain = 32;

    private sealed class Process(CPythonProcess process, int nameOffset)
    {
        public readonly CPythonProcess Source = process;
        public readonly ObjectReader Objects = new(process);
        public readonly int NameOffset = nameOffset;
        /// <summary>
        /// Reads a task's awaiters and where each is suspended; made at the first task seen running, when <c>_asyncio</c>
        /// (whose debug section says where tasks keep their awaiters) is loaded.
        /// </summary>
        public AsyncTaskReader? Tasks;
    }

    private readonly Dictionary<int, Process> _processes = [];
    private readonly Dictionary<(int Pid, ulong Task, ulong Name), string> _names = [];
    // A task's chain, kept with the task's name object and name: a task freed and another made at its address within
    // the refresh (a task made after another ends often takes its task's and its name's addresses) gets a chain of its
    // own unless it also got the same name.
    private Dictionary<(int Pid, ulong Task), (ulong NameObject, string Name, TaskChain Chain)> _chains = [];
    // The chains of the refresh before: a sample drained after its task ended, just after a refresh, finds the chain the
    // task had when its copy of the task's name matches it (its awaiters are not there to read any more).
    private Dictionary<(int Pid, ulong Task), (ulong NameObject, string Name, TaskChain Chain)> _expired = [];
    // The tasks whose kept chain was checked in this pass (their name object and name read once each).
    private readonly HashSet<(int Pid, ulong Task)> _checked = [];
    private long _chainsRead;

    /// <summary>
    /// How long a chain is kept before its awaiters are read again. A task's awaiters seldom change, and reading every
    /// sampled task's chain at every drain (100 a second) cost the tracer ~5% of a CPU for five tasks.
    /// </summary>
    public static readonly TimeSpan ChainRefresh = TimeSpan.FromMilliseconds(100);

    /// <summary>Names the tasks of <paramref name="process"/> (its memory is read through it, not owned).</summary>
    public void Add(CPythonProcess process, int taskNameOffset) => _processes[process.Pid] = new Process(process, taskNameOffset);

    public void Remove(int pid) => _processes.Remove(pid);

    /// <summary>Starts a pass (a drain): chains older than <see cref="ChainRefresh"/> are read again at their task's next sample.</summary>
    public void NewPass()
    {
        _checked.Clear();
        if (Stopwatch.GetElapsedTime(_chainsRead) < ChainRefresh) return;
        (_expired, _chains) = (_chains, _expired);
        _chains.Clear();
        _chainsRead = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// What a sample taken in the task at <paramref name="task"/> in <paramref name="pid"/> goes under: its outermost
    /// awaiter's <c>task NAME</c> and the frames it awaits in, and so on down to the task's own <c>task NAME</c>, with the
    /// code of the task's coroutine, where its own frames start; null for no task (0).
    /// </summary>
    public TaskChain? Chain(int pid, ulong task, SampledTask? sampled = null)
    {
        if (task == 0 || !_processes.TryGetValue(pid, out var p)) return null;
        var kept = _chains.TryGetValue((pid, task), out var known);
        if (sampled is { } copy)
        {
            // The kernel's copy of the task's name says which task it was, without a read.
            if (kept && copy.Is(task, known.NameObject, known.Name)) return known.Chain;
            // A task whose name object is not the one the sample saw has ended (or been renamed) since: it goes under the
            // chain it had before the last refresh where the copy says it is that task, else alone, by the name it had.
            if (copy.Name is not null && NameObjectOf(p, task) != copy.NameObject)
                return _expired.TryGetValue((pid, task), out var before) && copy.Is(task, before.NameObject, before.Name) ? before.Chain : copy.Alone();
        }
        else if (kept && _checked.Contains((pid, task))) return known.Chain;
        var nameObject = NameObjectOf(p, task);
        // Each task's name is read once: an awaiter's when it is chosen among its siblings.
        var name = sampled?.Name ?? NameOf(pid, p, task, nameObject);
        if (kept && known.NameObject == nameObject && known.Name == name)
        {
            _checked.Add((pid, task));
            return known.Chain;
        }
        var innermostFirst = new List<StackFrame>();
        var seen = new HashSet<ulong>();
        var named = name;
        for (ulong at = task; at != 0 && seen.Count < MaxChain && seen.Add(at);)
        {
            if (at != task) innermostFirst.AddRange(SuspendedIn(p, at));
            var awaiters = Awaiters(p, at);
            innermostFirst.Add(StackFrame.TaskRoot(named, awaiters.Count));
            (at, named) = awaiters.Count == 0 ? (0UL, "")
                : awaiters.Select(a => (Task: a, Name: NameOf(pid, p, a))).MinBy(a => a.Name, StringComparer.Ordinal);
        }
        innermostFirst.Reverse();
        _checked.Add((pid, task));
        var chain = new TaskChain([.. innermostFirst], Read(p, tasks => tasks.CoroutineCodeOf(task), 0UL));
        _chains[(pid, task)] = (nameObject, name, chain);
        return chain;
    }

    private static IReadOnlyList<StackFrame> SuspendedIn(Process p, ulong task) => Read(p, tasks => tasks.SuspendedIn(task), []);

    /// <summary>The tasks awaiting <paramref name="task"/> (its <c>task_awaited_by</c>: one task, or a set of them).</summary>
    private static IReadOnlyList<ulong> Awaiters(Process p, ulong task) => Read(p, tasks => tasks.AwaitersOf(task), []);

    private static T Read<T>(Process p, Func<AsyncTaskReader, T> read, T gone)
    {
        try
        {
            return read(p.Tasks ??= new AsyncTaskReader(p.Source, new StackReader(p.Source)));
        }
        catch (Exception e) when (e is IOException or UnsupportedRuntimeException) { return gone; } // gone, or changed while read
    }

    /// <summary>The task's name object, or 0 where the task cannot be read (gone).</summary>
    private static ulong NameObjectOf(Process p, ulong task)
    {
        try
        {
            return p.Source.Memory.ReadU64(task + (ulong)p.NameOffset);
        }
        catch (IOException) { return 0; }
    }

    private string NameOf(int pid, Process p, ulong task) => NameOf(pid, p, task, NameObjectOf(p, task));

    /// <summary>The task's name, read now; where its name object cannot be read, as it was last read, or its address.</summary>
    private string NameOf(int pid, Process p, ulong task, ulong nameObject)
    {
        string name;
        try
        {
            name = TaskName.Of(p.Objects, nameObject) ?? $"0x{task:x}";
        }
        catch (IOException) { return _names.GetValueOrDefault((pid, task, nameObject)) ?? $"0x{task:x}"; } // ProcessMemoryException included
        if (_names.Count >= MaxNames) _names.Clear();
        return _names[(pid, task, nameObject)] = name;
    }
}
