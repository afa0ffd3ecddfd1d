using Pyprobe.Python.Asyncio;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Sampling;

/// <summary>Turns one sampled frame (code object address, position, first line) of a process into a named frame.</summary>
public interface IFrameResolver
{
    StackFrame Resolve(int pid, SampledFrame frame);

    /// <summary>Takes the kernel's copies of a code object (a <see cref="StackSampleFlags.CodeObject"/> record) for the samples after it.</summary>
    void Learn(int pid, ReadOnlySpan<byte> capture);
}

/// <summary><c>record --tasks</c>: what a sample taken in an asyncio task goes under.</summary>
public interface ITaskChains
{
    /// <summary>
    /// The sample's chain, null for none. <paramref name="held"/> is set where the chain is not known yet (a task no read
    /// has found yet): the chain given then is the task alone, where its own frames start, and the roots wait for
    /// <see cref="TrySettle"/>.
    /// </summary>
    TaskChain? Of(StackSampleRecord sample, out HeldTask? held);

    /// <summary>A held sample's chain once it is known (false while it is not); with <paramref name="now"/>, known now.</summary>
    bool TrySettle(HeldTask held, bool now, out TaskChain? chain);
}

/// <summary>
/// Adds the kernel's samples up into a profile: frames resolved to names and lines, innermost-first records
/// turned root-first, a thread root per thread with <c>--threads</c>, a truncation marker where the kernel
/// stopped walking. Samples of a thread with no Python frame are counted, not added. In a wall-clock
/// recording (<paramref name="offCpuSpans"/> given) switch-out and switch-in records become off-CPU spans
/// added, when they end, to the stack the thread left its CPU with.
/// </summary>
/// <param name="threadNames">With <paramref name="threadRoots"/>: a thread's name (pid, tid), asked once per thread.</param>
/// <param name="offCpuSpans">Wall clock: the spans, owned by the caller so they outlive one recorder (intervals).</param>
/// <param name="gilOnly">Keep only the samples of threads that held the GIL (<see cref="StackSampleFlags.HoldsGil"/>); the others are counted.</param>
/// <param name="native">With <c>--native</c>: the native stack copies, merged into the samples they came with.</param>
/// <param name="taskChains">With <c>record --tasks</c>: what a sample taken in an asyncio task (the task's address, or its
/// coroutine's, the kernel sent, and its <see cref="TaskSnapshot"/>) goes under (<see cref="TaskChain"/>), null for none: its roots under the thread's, then the sample's frames
/// from the task's coroutine in. A sample whose chain is not known yet is held, its frames resolved, until it is
/// (<see cref="SettleHeld"/>), and at the latest when the profile is built.</param>
public sealed class ProfileRecorder(IFrameResolver resolver, bool threadRoots, Func<int, int, string?> threadNames, OffCpuSpans? offCpuSpans = null, bool gilOnly = false,
    NativeStacks? native = null, ITaskChains? taskChains = null)
{
    private readonly List<StackFrame> _python = [], _mixed = [];
    private readonly List<bool> _startsRun = [];
    private readonly StackAggregator _stacks = new();
    private readonly Dictionary<int, string?> _threadNames = [];
    private readonly OffCpuSpans? _spans = offCpuSpans;
    private readonly List<HeldSample> _held = [];
    private StackFrame[] _frames = new StackFrame[128];
    private int _heldRootsEnd;
    private long _taken, _noPythonFrame, _truncated, _offCpu, _switchOuts, _withoutGil, _cFramesOnly, _taskWaits;

    /// <summary>Samples delivered so far (off-CPU spans as their sample-equivalents).</summary>
    public long Delivered => _taken;

    /// <summary>Switch-out records read (wall clock): each a stack walked as its thread left the CPU.</summary>
    public long SwitchOuts => _switchOuts;

    /// <summary>Adds one <see cref="StackSampleRecord"/> as the ring delivered it.</summary>
    public void Add(ReadOnlySpan<byte> record)
    {
        var sample = new StackSampleRecord(record);
        var flags = sample.Flags;
        if ((flags & StackSampleFlags.NativeStack) != 0)
        {
            native?.Keep(record);
            return;
        }
        if ((flags & StackSampleFlags.CodeObject) != 0)
        {
            resolver.Learn(sample.Pid, record);
            return;
        }
        if ((flags & (StackSampleFlags.OnCpu | StackSampleFlags.OffCpu)) != 0)
        {
            AddSwitch(sample, flags);
            return;
        }
        _taken++;
        if (sample.FrameCount == 0)
        {
            _noPythonFrame++;
            if (!gilOnly) AddCFramesOnly(sample);
            return;
        }
        if (gilOnly && (flags & StackSampleFlags.HoldsGil) == 0)
        {
            _withoutGil++;
            return;
        }
        var truncated = (flags & StackSampleFlags.Truncated) != 0;
        if (truncated) _truncated++;
        // Fill first: it may grow the buffer, and the span must be taken over the grown one.
        var length = FillRootFirst(sample, truncated, out var held);
        var holdsGil = (flags & StackSampleFlags.HoldsGil) != 0 ? 1 : 0;
        if (held is not null) _held.Add(new HeldSample(held, sample.Tid, _frames.AsSpan(_heldRootsEnd, length - _heldRootsEnd).ToArray(), holdsGil));
        else _stacks.Add(_frames.AsSpan(0, length), 1, holdsGil);
    }

    /// <summary>A sample whose task chain was not known when it was added: its frames (after the roots) wait for it.</summary>
    private sealed record HeldSample(HeldTask Task, int Tid, StackFrame[] Frames, int HoldsGil);

    /// <summary>
    /// Adds the held samples whose chain is known by now (<see cref="ITaskChains.TrySettle"/>; with
    /// <paramref name="now"/>, every one).
    /// </summary>
    public void SettleHeld(bool now = false)
    {
        if (_held.Count == 0 || taskChains is null) return;
        _held.RemoveAll(held =>
        {
            if (!taskChains.TrySettle(held.Task, now, out var chain)) return false;
            var at = WriteRoots(held.Task.Pid, held.Tid, chain?.Roots, held.Frames.Length);
            held.Frames.CopyTo(_frames, at);
            _stacks.Add(_frames.AsSpan(0, at + held.Frames.Length), 1, held.HoldsGil);
            return true;
        });
    }

    /// <summary>
    /// Wall clock with <c>--tasks</c>: an asyncio task of <paramref name="pid"/> was suspended in an await for
    /// <paramref name="samples"/> sample periods (<see cref="WaitingTaskCensus"/>), with this stack, root first; under its
    /// loop's thread with <c>--threads</c> where that is known.
    /// </summary>
    public void AddWaitingTask(int pid, int? loopThread, StackFrame[] rootFirst, long samples)
    {
        _stacks.Add(_frames.AsSpan(0, WriteRoots(pid, loopThread, rootFirst, 0)), samples);
        _taken += samples;
        _offCpu += samples;
        _taskWaits += samples;
    }

    /// <summary>Wall clock: <paramref name="tid"/> was found off its CPU at <paramref name="timeNs"/> with this stack (read from user space when a process is added).</summary>
    public void OpenSpan(int pid, int tid, ulong timeNs, IReadOnlyList<StackFrame> innermostFirst)
    {
        if (_spans is null) return;
        var stack = new List<StackFrame>(innermostFirst.Count + 1);
        if (threadRoots) stack.Add(StackFrame.ThreadRoot(tid, ThreadName(pid, tid)));
        for (var i = innermostFirst.Count - 1; i >= 0; i--) stack.Add(innermostFirst[i]);
        _spans.Open(pid, tid, timeNs, innermostFirst.Count == 0 ? null : stack.ToArray(), truncated: false);
    }

    /// <summary>Wall clock: the spans of threads still off their CPU end at <paramref name="timeNs"/> (the process exited, or the recording stopped).</summary>
    public void CloseSpans(ulong timeNs, int? pid = null)
    {
        if (_spans is null) return;
        foreach (var span in _spans.CloseAll(timeNs, pid)) AddSpan(span);
    }

    /// <summary>The profile so far; <paramref name="lost"/> is the kernel's count of records the ring could not take.</summary>
    public StackProfile Build(IReadOnlyList<int> pids, string version, int rateHz, ProfileMode mode, DateTimeOffset start, TimeSpan duration, long lost)
    {
        SettleHeld(now: true);
        return _stacks.Build(new ProfileMetadata(pids, version, rateHz, mode, start, duration,
            new SampleTotals(_taken + lost, _noPythonFrame, _truncated, lost, _offCpu, _withoutGil, _cFramesOnly, _taskWaits)));
    }

    private void AddSwitch(StackSampleRecord sample, StackSampleFlags flags)
    {
        if (_spans is null) return;
        if ((flags & StackSampleFlags.OnCpu) != 0)
        {
            if (_spans.Close(sample.Tid, sample.TimeNs) is { } span) AddSpan(span);
            return;
        }
        _switchOuts++;
        var truncated = (flags & StackSampleFlags.Truncated) != 0;
        StackFrame[]? stack = null;
        if (sample.FrameCount > 0)
        {
            var length = FillRootFirst(sample, truncated, out _);
            stack = _frames.AsSpan(0, length).ToArray();
        }
        _spans.Open(sample.Pid, sample.Tid, sample.TimeNs, stack, truncated);
    }

    private void AddSpan(ClosedSpan span)
    {
        if (span.Samples == 0) return;
        _taken += span.Samples;
        _offCpu += span.Samples;
        if (span.Stack is null)
        {
            _noPythonFrame += span.Samples;
            return;
        }
        if (span.Truncated) _truncated += span.Samples;
        _stacks.Add(span.Stack, span.Samples);
    }

    /// <summary>
    /// Fills the frame buffer root first (thread root, truncation marker, outermost … innermost; with <c>--native</c> the
    /// native frames merged in); returns the length. <paramref name="held"/>: the chain is not known yet, and the roots
    /// (up to <see cref="_heldRootsEnd"/>) are the task's alone.
    /// </summary>
    private int FillRootFirst(StackSampleRecord sample, bool truncated, out HeldTask? held)
    {
        held = null;
        var chain = taskChains?.Of(sample, out held);
        var count = OwnFrames(sample, chain);
        var mixed = Mixed(sample, count);
        var frames = mixed?.Count ?? count;
        var at = _heldRootsEnd = WriteRoots(sample.Pid, sample.Tid, chain?.Roots, frames + (truncated ? 1 : 0));
        if (truncated) _frames[at++] = StackFrame.Truncated;
        if (mixed is not null)
            for (var i = mixed.Count - 1; i >= 0; i--) _frames[at++] = mixed[i];
        else
            for (var i = count - 1; i >= 0; i--) _frames[at++] = resolver.Resolve(sample.Pid, sample.Frame(i));
        return at;
    }

    /// <summary>
    /// How many of the sample's frames, innermost first, are its own: under a task, those from the outermost frame of the
    /// task's coroutine in; all of them outside a task, or where the coroutine's frame is not on the stack (the task is
    /// set running just before its step pushes that frame, and after it pops it).
    /// </summary>
    private static int OwnFrames(StackSampleRecord sample, TaskChain? chain)
    {
        if (chain is not { CoroutineCode: not 0 and var code }) return sample.FrameCount;
        for (var i = sample.FrameCount - 1; i >= 0; i--)
            if (sample.Frame(i).Code == code) return i + 1;
        return sample.FrameCount;
    }

    /// <summary>
    /// Makes room for the roots and <paramref name="frames"/> more, and writes the roots (the thread's where
    /// <paramref name="tid"/> is known, then the task chain's) at the start of the stack; returns where the frames go.
    /// </summary>
    private int WriteRoots(int pid, int? tid, StackFrame[]? tasks, int frames)
    {
        tasks ??= [];
        var withThread = threadRoots && tid is not null;
        var length = frames + (withThread ? 1 : 0) + tasks.Length;
        if (_frames.Length < length) _frames = new StackFrame[Math.Max(length, _frames.Length * 2)];
        var at = 0;
        if (withThread) _frames[at++] = StackFrame.ThreadRoot(tid!.Value, ThreadName(pid, tid.Value));
        tasks.CopyTo(_frames, at);
        return at + tasks.Length;
    }

    /// <summary>
    /// With <c>--native</c>: a CPU sample of a thread with no Python frame (a C library's own thread, or a Python thread
    /// between Python calls) goes in by its C frames, the whole native stack.
    /// </summary>
    private void AddCFramesOnly(StackSampleRecord sample)
    {
        if (native is null || !native.HasCopy(sample.Pid, sample.Tid, sample.TimeNs)) return;
        _mixed.Clear();
        native.Merge(sample.Pid, sample.Tid, [], [], _mixed);
        if (_mixed.Count == 0) return;
        var at = WriteRoots(sample.Pid, sample.Tid, taskChains?.Of(sample, out _)?.Roots, _mixed.Count);
        for (var i = _mixed.Count - 1; i >= 0; i--) _frames[at++] = _mixed[i];
        _stacks.Add(_frames.AsSpan(0, at));
        _cFramesOnly++;
    }

    /// <summary>
    /// With <c>--native</c> and the sample's copy at hand: its Python frames merged into its native stack, innermost first,
    /// up to its <paramref name="own"/>th Python frame (<see cref="OwnFrames"/>) where that is not the last.
    /// </summary>
    private List<StackFrame>? Mixed(StackSampleRecord sample, int own)
    {
        if (native is null || sample.FrameCount == 0 || !native.HasCopy(sample.Pid, sample.Tid, sample.TimeNs)) return null;
        _python.Clear();
        _startsRun.Clear();
        var eachFrameIsARun = native.EachFrameIsARun(sample.Pid);
        for (var i = 0; i < sample.FrameCount; i++)
        {
            _python.Add(resolver.Resolve(sample.Pid, sample.Frame(i)));
            _startsRun.Add(eachFrameIsARun || sample.IsEntryFrame(i));
        }
        _mixed.Clear();
        native.Merge(sample.Pid, sample.Tid, _python, _startsRun, _mixed);
        if (own < sample.FrameCount)
        {
            // Merged whole (the C frames pair with the eval-loop runs of all of them), then cut after the own ones.
            for (int i = 0, python = 0; i < _mixed.Count; i++)
            {
                if (_mixed[i].Kind == FrameKind.Native || ++python < own) continue;
                _mixed.RemoveRange(i + 1, _mixed.Count - i - 1);
                break;
            }
        }
        return _mixed;
    }

    private string? ThreadName(int pid, int tid)
    {
        if (_threadNames.TryGetValue(tid, out var name)) return name;
        name = threadNames(pid, tid);
        _threadNames[tid] = name;
        return name;
    }
}
