using Stopwatch = System.Diagnostics.Stopwatch;
using Pyprobe.Python.Processes;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sampling;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// <c>record --tasks</c> before 3.14, whose thread states do not name the task they run: the kernel sends the outermost
/// coroutine on the sampled thread's stack (<see cref="Sampling.StackWalkConfig.RunningCoroutine"/>), and the task is
/// the one whose coroutine that is, among the process's pending tasks read from user space (as <c>dump --tasks</c>
/// reads them), each with its chain of awaiters (the tasks waiting for it: what it awaits directly, a <c>gather()</c>'s
/// children, a TaskGroup's tasks). The tasks are read again when a coroutine is not among them and the last read is
/// older than the sample (a task made since), and when the last read is a second old (awaiters change; 100 ms at first,
/// doubling, as a program starts); never more than one twentieth of the time (the reads' CPU time), so a process with
/// thousands of tasks is read less often, not at more cost. A task kept from a read is checked once a drain (<see cref="AsyncTaskReader.IsStill"/>): a task ended,
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
    /// <summary>
    /// The first refresh; each after doubles it up to <see cref="Refresh"/>. A program's first moments are when its tasks
    /// start awaiting each other: a read taken just before a parent began to await its new tasks would leave their samples
    /// alone for a whole second.
    /// </summary>
    private static readonly TimeSpan FirstRefresh = TimeSpan.FromMilliseconds(100);
    private readonly Dictionary<int, Process> _processes = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _pass;

    private sealed class Process(CPythonProcess source)
    {
        public readonly AsyncTaskReader Reader = new(source, new StackReader(source));
        /// <summary>Each pending task's coroutine, with the task (its address and name object) and what its samples go under.</summary>
        public Dictionary<ulong, (ulong Task, ulong NameObject, string Name, TaskChain Chain)> Chains = [];
        /// <summary>
        /// The chains of the read before the last: a sample taken in a task's last moments and drained after a read that
        /// began after the task ended finds its chain there, where its copy of the task's name says it is that task.
        /// </summary>
        public Dictionary<ulong, (ulong Task, ulong NameObject, string Name, TaskChain Chain)> Before = [];
        /// <summary>Coroutines whose task was checked in this pass (still pending with them).</summary>
        public readonly HashSet<ulong> Checked = [];
        /// <summary>Coroutines of samples taken before the last read and not found there: no task's.</summary>
        public readonly HashSet<ulong> NoTask = [];
        public TimeSpan? Read;
        /// <summary>When the last read that succeeded began, on the samples' clock: it knows every task made before.</summary>
        public ulong ReadNs;
        /// <summary>The pass of the last read tried.</summary>
        public long TriedPass = -1;
        public TimeSpan Cost;
        /// <summary>How long the chains read are kept before they are read again (<see cref="FirstRefresh"/>, doubling to <see cref="Refresh"/>).</summary>
        public TimeSpan KeptFor = FirstRefresh;
    }

    /// <summary>Finds the tasks of <paramref name="process"/> (its memory is read through it, not owned).</summary>
    public void Add(CPythonProcess process) => _processes[process.Pid] = new Process(process);

    public void Remove(int pid) => _processes.Remove(pid);

    public bool Has(int pid) => _processes.ContainsKey(pid);

    /// <summary>Starts a pass (a drain): a kept task is checked once in it.</summary>
    public void NewPass()
    {
        _pass++;
        foreach (var p in _processes.Values) p.Checked.Clear();
    }

    /// <summary>
    /// What a sample taken at <paramref name="takenNs"/> (the kernel's clock) whose outermost coroutine is
    /// <paramref name="coroutine"/> goes under; null for no task. <paramref name="sampled"/>: the task the kernel found
    /// running it, where it found one. <paramref name="held"/> is set where that task is not known yet (no read since the
    /// sample, the reads being held to their share of the time): the chain given is the task alone, and
    /// <see cref="TrySettle"/> says what it goes under once a read after the sample has been made.
    /// </summary>
    public TaskChain? Chain(int pid, ulong coroutine, ulong takenNs, SampledTask? sampled, out HeldTask? held)
    {
        held = null;
        if (coroutine == 0 || !_processes.TryGetValue(pid, out var p)) return null;
        var now = _clock.Elapsed;
        if (Due(p, now, p.KeptFor)) ReadTasks(p, now);
        if (Known(p, coroutine, sampled) is { } chain) return chain;
        if (sampled is null && p.NoTask.Contains(coroutine)) return null;
        // A read begun after the sample knows the tasks there were. An older one may not know a task made since.
        if (p.ReadNs <= takenNs && Due(p, now, TimeSpan.Zero))
        {
            ReadTasks(p, now);
            if (Known(p, coroutine, sampled) is { } read) return read;
        }
        if (sampled is { } task)
        {
            // The kernel saw the task, so it was there: a read after the sample finds it unless it ended since.
            if (p.ReadNs <= takenNs) held = new HeldTask(pid, coroutine, task, takenNs);
            return task.Alone();
        }
        if (p.ReadNs > takenNs) p.NoTask.Add(coroutine);
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
        if (p.ReadNs <= held.TakenNs && (now ? p.TriedPass != _pass : Due(p, elapsed, TimeSpan.Zero))) ReadTasks(p, elapsed);
        if (p.ReadNs <= held.TakenNs && !now) return false;
        if (Known(p, held.Coroutine, held.Task) is { } known) chain = known;
        return true;
    }

    /// <summary>
    /// The kept chain of the task whose coroutine this is: where the kernel saw the task, if it is that task by address,
    /// name object and name (in the last read, or in the one before where the task ended between them); otherwise
    /// checked once in each pass after the one it was read in (the task may have finished, and another taken its place).
    /// </summary>
    private static TaskChain? Known(Process p, ulong coroutine, SampledTask? sampled)
    {
        if (!p.Chains.TryGetValue(coroutine, out var known))
            return sampled is { } ended && p.Before.TryGetValue(coroutine, out var before) && ended.Is(before.Task, before.NameObject, before.Name) ? before.Chain : null;
        if (sampled is { } task) return task.Is(known.Task, known.NameObject, known.Name) ? known.Chain : null;
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
        var begun = KernelClock.NowNs;
        try
        {
            var forest = new TaskForest(p.Reader.ReadAll());
            var chains = new Dictionary<ulong, (ulong, ulong, string, TaskChain)>();
            foreach (var task in forest.Tasks)
                if (task.Coroutine != 0) chains.TryAdd(task.Coroutine, (task.Id, task.NameObject, task.Name, new TaskChain(forest.Chain(task, ownFrames: false), task.CoroutineCode)));
            (p.Before, p.Chains) = (p.Chains, chains);
            p.KeptFor = p.KeptFor * 2 < Refresh ? p.KeptFor * 2 : Refresh;
            // Its tasks are as good as checked for this pass's samples (those taken after it began are microseconds newer).
            p.ReadNs = begun;
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
/// its outermost coroutine, the task, and when it was taken (the kernel's clock); a read begun after that knows the task,
/// unless it has ended.
/// </summary>
public sealed record HeldTask(int Pid, ulong Coroutine, SampledTask Task, ulong TakenNs);
