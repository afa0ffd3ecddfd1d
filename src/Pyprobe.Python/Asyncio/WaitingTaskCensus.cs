using Stopwatch = System.Diagnostics.Stopwatch;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Processes;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// <c>record --tasks --idle</c>: the time every asyncio task spends suspended in an await, which no thread spends for it
/// and no kernel sample sees. At each census every pending task of each process is read from user space (as
/// <c>dump --tasks</c> reads them) and each task that waits on something other than a task (a sleep, an event, I/O) is
/// counted for the time since the census before, in samples at the recording's rate, under its chain of awaiters: the
/// tasks waiting for it, outermost first, each with the frames it awaits in, then its own frames down to the await it is
/// suspended in (<c>task main;main;TaskGroup.__aexit__;TaskGroup._aexit;task fetch;fetch;sleep</c>), as CPython's own sampler
/// draws every task with <c>--async-mode all</c>. A task that waits for other tasks is counted through theirs; the running
/// task is the kernel's samples.
/// </summary>
/// <remarks>
/// A census costs a pass over every task (~3 ms for ten tasks here, ~30 ms for a thousand): they are taken at most 20
/// times a second (or once a sample period, if longer) and at most one twentieth of the time (their CPU time), so a process with many
/// tasks is counted less often (each census then stands for a longer time), not at more cost.
/// </remarks>
public sealed class WaitingTaskCensus(int rateHz, bool loopThreads)
{
    private const int MaxCostShare = 20;
    private static readonly TimeSpan ThreadsRefresh = TimeSpan.FromSeconds(1), ReaderRetry = TimeSpan.FromMilliseconds(200);
    private readonly Dictionary<int, Process> _processes = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TimeSpan _period = TimeSpan.FromSeconds(Math.Max(1.0 / rateHz, 0.05));
    private TimeSpan _last = TimeSpan.Zero, _cost = TimeSpan.Zero;

    private sealed class Process(CPythonProcess source, long ticks)
    {
        public readonly CPythonProcess Source = source;
        /// <summary>Made at once before 3.14; from 3.14 once the process's <c>_asyncio</c> module, whose debug section says where the tasks are, is loaded.</summary>
        public AsyncTaskReader? Reader;
        public TimeSpan? ReaderTried;
        /// <summary>The sample periods since the census began, up to this process's last census (or its addition).</summary>
        public long Ticks = ticks;
        /// <summary>With loop threads asked for: the process's threads by <c>threading.get_ident()</c>, read once a second.</summary>
        public IReadOnlyDictionary<ulong, int>? TidsByIdent;
        public TimeSpan? ThreadsRead;
    }

    /// <summary>Censuses taken so far.</summary>
    public long Taken { get; private set; }

    /// <summary>Counts the tasks of <paramref name="process"/> from now on (its memory is read through it, not owned).</summary>
    public void Add(CPythonProcess process) => _processes[process.Pid] = new Process(process, TicksAt(_clock.Elapsed));

    public void Remove(int pid) => _processes.Remove(pid);

    private long TicksAt(TimeSpan elapsed) => (long)(elapsed.TotalSeconds * rateHz);

    /// <summary>
    /// Takes a census when one is due (or now, with <paramref name="last"/>: the recording ends, and the time since the
    /// census before is counted too) and gives each waiting task's stack, root first, with the samples it stands for
    /// (pid, its loop's thread where known and asked for, stack, samples).
    /// </summary>
    public void TakeIfDue(Action<int, int?, StackFrame[], long> add, bool last = false)
    {
        var now = _clock.Elapsed;
        if (!last && (now - _last < _period || now - _last < _cost * MaxCostShare)) return;
        _last = now;
        var cpu = ThreadCpuClock.Now;
        Taken++;
        var due = TicksAt(now);
        foreach (var (pid, p) in _processes)
        {
            // Each waiting task stands for every sample period since this process's census before.
            var ticks = due - p.Ticks;
            p.Ticks = due;
            if (ticks <= 0 || ReaderOf(p, now) is not { } reader) continue;
            IReadOnlyList<AsyncTask> tasks;
            try { tasks = reader.ReadAll(tidsByIdent: LoopThreads(p, now)); }
            catch (Exception e) when (e is IOException or UnsupportedRuntimeException) { continue; } // gone, or changed while read
            foreach (var (loopThread, stack) in WaitingStacks(tasks)) add(pid, loopThread, stack, ticks);
        }
        _cost = ThreadCpuClock.Now - cpu;
    }

    /// <summary>The process's task reader; from 3.14 once its <c>_asyncio</c> is loaded (looked for at most every <see cref="ReaderRetry"/>).</summary>
    private static AsyncTaskReader? ReaderOf(Process p, TimeSpan now)
    {
        if (p.Reader is not null || now - p.ReaderTried < ReaderRetry) return p.Reader; // null: never tried
        p.ReaderTried = now;
        try
        {
            // Before 3.14 the tasks are found through asyncio's module (each census looks): the reader needs nothing loaded.
            if (!p.Source.Binary.Version.IsAtLeast(3, 14) || TaskRegistry.DebugOffsets(p.Source) is not null) p.Reader = new AsyncTaskReader(p.Source, new StackReader(p.Source));
        }
        catch (Exception e) when (e is IOException or UnsupportedRuntimeException) { } // gone: removed at the next poll
        return p.Reader;
    }

    private IReadOnlyDictionary<ulong, int>? LoopThreads(Process p, TimeSpan now)
    {
        if (!loopThreads || now - p.ThreadsRead < ThreadsRefresh) return p.TidsByIdent;
        p.ThreadsRead = now;
        try
        {
            var threads = new StackReader(p.Source);
            threads.ReadAll();
            p.TidsByIdent = threads.TidsByIdent;
        }
        catch (Exception e) when (e is IOException or UnsupportedRuntimeException) { } // keeps the last
        return p.TidsByIdent;
    }

    /// <summary>Each task that waits on something other than a task, under its awaiters (<see cref="RunningTaskNames"/>' form).</summary>
    private static IEnumerable<(int? LoopThread, StackFrame[] Stack)> WaitingStacks(IReadOnlyList<AsyncTask> tasks)
    {
        var forest = new TaskForest(tasks);
        foreach (var task in forest.Tasks)
            if (task.State == AsyncTaskState.Waiting && !forest.WaitsForATask(task)) yield return (task.Tid, forest.Chain(task, ownFrames: true));
    }
}
