using Pyprobe.Python.Asyncio;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// <c>record --tasks</c>: what each sample goes under, by what its record carries: from 3.14 the task the thread state
/// names (<see cref="RunningTaskNames"/>), before 3.14 the outermost coroutine on the stack and the task the kernel found
/// resuming it (<see cref="TasksByCoroutine"/>); on every version the copy of the task's name taken with the sample
/// (<see cref="SnapshotNames"/>).
/// </summary>
public sealed class SampledTaskChains : ITaskChains
{
    private readonly RunningTaskNames _byThreadState = new();
    private readonly TasksByCoroutine _byCoroutine = new();
    private readonly Dictionary<int, SnapshotNames> _snapshotNames = [];

    /// <summary>A process (3.14+) whose thread states name the task they run; <paramref name="taskName"/>: where a task keeps its name.</summary>
    public void AddByThreadState(CPythonProcess process, int taskName)
    {
        _byThreadState.Add(process, taskName);
        _snapshotNames[process.Pid] = new SnapshotNames(process);
    }

    /// <summary>A process (before 3.14) whose samples say the outermost coroutine and, where the kernel found it, the task.</summary>
    public void AddByCoroutine(CPythonProcess process)
    {
        _byCoroutine.Add(process);
        _snapshotNames[process.Pid] = new SnapshotNames(process);
    }

    public void Remove(int pid)
    {
        _byThreadState.Remove(pid);
        _byCoroutine.Remove(pid);
        _snapshotNames.Remove(pid);
    }

    /// <summary>Starts a pass (a drain): every sample added in it was taken before it began.</summary>
    public void NewPass()
    {
        _byThreadState.NewPass();
        _byCoroutine.NewPass();
    }

    public TaskChain? Of(StackSampleRecord sample, out HeldTask? held)
    {
        held = null;
        var sampled = SampledTaskOf(sample);
        return _byCoroutine.Has(sample.Pid)
            ? _byCoroutine.Chain(sample.Pid, sample.ThreadState, sample.TimeNs, sampled, out held)
            : _byThreadState.Chain(sample.Pid, sample.ThreadState, sampled);
    }

    public bool TrySettle(HeldTask held, bool now, out TaskChain? chain) => _byCoroutine.TrySettle(held, now, out chain);

    /// <summary>The task the kernel saw the sample taken in, its name decoded from the copy (<see cref="TaskSnapshot"/>); null where it sent none.</summary>
    private SampledTask? SampledTaskOf(StackSampleRecord sample)
    {
        if (!sample.TryGetTask(out var task) || !_snapshotNames.TryGetValue(sample.Pid, out var names)) return null;
        var coroutine = task.CoroutineFrame is var at && at >= 0 && at < sample.FrameCount ? sample.Frame(at).Code : 0;
        return new SampledTask(task.Task, task.NameObject, names.Name(task.NameObject, task.Name), coroutine);
    }
}
