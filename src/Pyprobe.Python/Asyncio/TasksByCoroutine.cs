using Stopwatch = System.Diagnostics.Stopwatch;
using Pyprobe.Python.Processes;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// <c>record --tasks</c> before 3.14, whose thread states do not name the task they run: the kernel sends the outermost
/// coroutine on the sampled thread's stack (<see cref="Sampling.StackWalkConfig.RunningCoroutine"/>), and the task is
/// the one whose coroutine that is, among the process's pending tasks read from user space (as <c>dump --tasks</c>
/// reads them), each with its chain of awaiters (the tasks waiting for it: what it awaits directly, a <c>gather()</c>'s
/// children, a TaskGroup's tasks). The tasks are read again when a coroutine is not among them and the last read is
/// older than the sample (a task made since), and when the last read is a second old (awaiters change); never more than
/// one twentieth of the time (the reads' CPU time), so a process with thousands of tasks is read less often, not at
/// more cost. A task kept from a read is checked once a drain (<see cref="AsyncTaskReader.IsStill"/>): a task ended,
/// and another made at its addresses, is not taken for it. Where the kernel found the task itself (<see
/// cref="SampledTask"/>: the loop resumed the coroutine), the sample says which task it was without a read: a kept task
/// is taken only if it is that one; a task no read has found yet (made since the last, the next not due) is held until
/// one is made (<see cref="HeldTask"/>), and a task that ended before then goes by the name it had. A generator that is
/// no task's (plain code iterating one) leaves its samples without a task.
/// </summary>
public sealed class TasksByCoroutine
{
    private const int MaxCostShare = 20;
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(1);
    private readonly Dictionary<int, Process> _processes = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _pass;

    private sealed class Process(CPythonProcess source)
    {
        public readonly AsyncTaskReader Reader = new(source, new StackReader(source));
        /// <summary>Each pending task's coroutine, with the task (its address and name object) and what its samples go under.</summary>
        public Dictionary<ulong, (ulong Task, ulong NameObject, string Name, TaskChain Chain)> Chains = [];
        /// <summary>Coroutines whose task was checked in this pass (still pending with them).</summary>
        public readonly HashSet<ulong> Checked = [];
        /// <summary>Coroutines of samples taken before the last read and not found there: no task's.</summary>
        public readonly HashSet<ulong> NoTask = [];
        public TimeSpan? Read;
        /// <summary>The pass of the last read that succeeded, and of the last tried.</summary>
        public long ReadPass = -1, TriedPass = -1;
        public TimeSpan Cost;
    }

    /// <summary>Finds the tasks of <paramref name="process"/> (its memory is read through it, not owned).</summary>
    public void Add(CPythonProcess process) => _processes[process.Pid] = new Process(process);

    public void Remove(int pid) => _processes.Remove(pid);

    public bool Has(int pid) => _processes.ContainsKey(pid);

    /// <summary>Starts a pass (a drain): every sample it adds was taken before it began.</summary>
    public void NewPass()
    {
        _pass++;
        foreach (var p in _processes.Values) p.Checked.Clear();
    }

    /// <summary>
    /// What a sample whose outermost coroutine is <paramref name="coroutine"/> goes under; null for no task.
    /// <paramref name="sampled"/>: the task the kernel found running it, where it found one. <paramref name="held"/> is set
    /// where that task is not known yet (no read since the sample, the reads being held to their share of the time): the
    /// chain given is the task alone, and <see cref="TrySettle"/> says what it goes under once a read after the sample has
    /// been made.
    /// </summary>
    public TaskChain? Chain(int pid, ulong coroutine, SampledTask? sampled, out HeldTask? held)
    {
        held = null;
        if (coroutine == 0 || !_processes.TryGetValue(pid, out var p)) return null;
        var now = _clock.Elapsed;
        if (Due(p, now, Refresh)) ReadTasks(p, now);
        if (Known(p, coroutine, sampled) is { } chain) return chain;
        if (sampled is null && p.NoTask.Contains(coroutine)) return null;
        // A read in this pass came after the sample: its tasks are those there were. An older one may not know a task
        // made since.
        if (p.ReadPass != _pass && Due(p, now, TimeSpan.Zero))
        {
            ReadTasks(p, now);
            if (Known(p, coroutine, sampled) is { } read) return read;
        }
        if (sampled is { } task)
        {
            // The kernel saw the task, so it was there: a read after the sample finds it unless it ended since.
            var alone = task.Alone();
            if (p.ReadPass != _pass && alone is not null) held = new HeldTask(pid, coroutine, task, _pass);
            return alone;
        }
        if (p.ReadPass == _pass) p.NoTask.Add(coroutine);
        return null;
    }

    /// <summary>
    /// What a held sample (<see cref="Chain"/>) goes under, once a read made after it says: its task's kept chain if the
    /// read found it, else the task alone (it ended before). False while no such read has been made and none is due yet;
    /// with <paramref name="now"/> (the recording, or its interval, ends) one is made if none was tried in this pass.
    /// </summary>
    public bool TrySettle(HeldTask held, bool now, out TaskChain? chain)
    {
        chain = held.Task.Alone();
        if (!_processes.TryGetValue(held.Pid, out var p)) return true; // exited
        var elapsed = _clock.Elapsed;
        if (p.ReadPass < held.Pass && (now ? p.TriedPass != _pass : Due(p, elapsed, TimeSpan.Zero))) ReadTasks(p, elapsed);
        if (p.ReadPass < held.Pass && !now) return false;
        if (Known(p, held.Coroutine, held.Task) is { } known) chain = known;
        return true;
    }

    /// <summary>
    /// The kept chain of the task whose coroutine this is: where the kernel saw the task, if it is that task by address,
    /// name object and name; otherwise checked once in each pass after the one it was read in (the task may have finished,
    /// and another taken its place).
    /// </summary>
    private static TaskChain? Known(Process p, ulong coroutine, SampledTask? sampled)
    {
        if (!p.Chains.TryGetValue(coroutine, out var known)) return null;
        if (sampled is { } task)
            return task.Task == known.Task && task.NameObject == known.NameObject && (task.Name ?? known.Name) == known.Name ? known.Chain : null;
        if (p.Checked.Contains(coroutine)) return known.Chain;
        if (!p.Reader.IsStill(known.Task, coroutine, known.NameObject, known.Name))
        {
            p.Chains.Remove(coroutine);
            return null;
        }
        p.Checked.Add(coroutine);
        return known.Chain;
    }

    private static bool Due(Process p, TimeSpan now, TimeSpan interval) =>
        p.Read is not TimeSpan read || (now - read >= interval && now - read >= p.Cost * MaxCostShare);

    private void ReadTasks(Process p, TimeSpan now)
    {
        p.Read = now;
        p.TriedPass = _pass;
        var cpu = ThreadCpuClock.Now;
        try
        {
            var forest = new TaskForest(p.Reader.ReadAll());
            var chains = new Dictionary<ulong, (ulong, ulong, string, TaskChain)>();
            foreach (var task in forest.Tasks)
                if (task.Coroutine != 0) chains.TryAdd(task.Coroutine, (task.Id, task.NameObject, task.Name, new TaskChain(forest.Chain(task, ownFrames: false), task.CoroutineCode)));
            p.Chains = chains;
            // Read after every sample of this pass was taken: as good as a check for them.
            p.ReadPass = _pass;
            p.NoTask.Clear();
            p.Checked.Clear();
            p.Checked.UnionWith(chains.Keys);
        }
        // Gone, or changed while read (a task being made): keeps the last, and a read that failed says nothing of the
        // pass's samples (a coroutine it would have found is not taken for no task's).
        catch (Exception e) when (e is IOException or UnsupportedRuntimeException) { }
        p.Cost = ThreadCpuClock.Now - cpu;
    }
}

/// <summary>
/// A sample taken in a task the kernel saw and no read had found yet (<see cref="TasksByCoroutine.Chain"/>): its process,
/// its outermost coroutine, the task, and the pass (drain) it was added in; a read in that pass or a later one came after
/// it.
/// </summary>
public sealed record HeldTask(int Pid, ulong Coroutine, SampledTask Task, long Pass);
