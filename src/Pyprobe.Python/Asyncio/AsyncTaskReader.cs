using System.Buffers.Binary;
using System.Numerics;
using Pyprobe.Python.Objects;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// Reads a process's pending asyncio tasks, as <c>python -m asyncio ps</c> does from 3.14 on but for 3.8–3.15: each
/// task's name, whether it runs, and the chain of coroutines it is suspended in, followed the way
/// <c>coroutine.cr_await</c> finds it (the object on top of a suspended frame's value stack), down to the future at its
/// end. Read only, bounded; nothing is called in the process.
/// </summary>
public sealed class AsyncTaskReader
{
    private const int MaxChain = 256;
    private readonly CPythonProcess _process;
    private readonly CoroutineLayout _layout;
    private ObjectReader _objects = null!; // each pass's, with _memory
    private readonly StackReader _frames;
    private readonly AsyncioDebugOffsets? _debug;

    public AsyncTaskReader(CPythonProcess process, StackReader frames)
    {
        _process = process;
        _layout = CoroutineLayout.For(process.Binary.Version)
            ?? throw new UnsupportedRuntimeException($"reading asyncio tasks is not supported on Python {process.Binary.Version}");
        _frames = frames;
        _debug = TaskRegistry.DebugOffsets(process);
    }

    // Tasks, their coroutines and frames lie near each other: read in blocks, kept for one pass (a reader that lives
    // longer, as serve's, starts each pass with a new view; every public method is a pass and sets it first).
    private BlockCachedMemory _memory = null!;
    private IMemoryReader M => _memory;
    private FrameLocals? _locals;
    private IReadOnlyDictionary<ulong, int>? _tidsByIdent;
    private readonly Dictionary<ulong, int?> _loopThreads = [];
    // FutureObj.fut_loop, the first field after the object header on every version.
    private const int FutureLoop = 16;

    /// <summary>
    /// How many tasks are pending, without reading their coroutines: a registry's tasks and one read of each one's state.
    /// </summary>
    public int CountPending()
    {
        (_memory, _objects) = FreshView();
        var pending = 0;
        foreach (var task in new TaskRegistry(_process, _objects, _memory).Find(_debug))
        {
            try
            {
                if (M.ReadI32(task + (ulong)_layout.FutureState) == 0) pending++;
            }
            catch (ProcessMemoryException) { } // gone while read: it finished
        }
        return pending;
    }

    /// <summary>
    /// Every pending task (a finished one still in a registry is left out); with <paramref name="locals"/> each frame's
    /// variables. <paramref name="tidsByIdent"/>: the process's threads by <c>threading.get_ident()</c>
    /// (<see cref="StackReader.TidsByIdent"/>), to say which thread runs each task's loop.
    /// </summary>
    public IReadOnlyList<AsyncTask> ReadAll(bool locals = false, IReadOnlyDictionary<ulong, int>? tidsByIdent = null)
    {
        (_memory, _objects) = FreshView();
        _loopThreads.Clear();
        _locals = locals ? new FrameLocals(_process) : null;
        _tidsByIdent = tidsByIdent;
        var result = new List<AsyncTask>();
        var awaitedBy = new List<(ulong Child, ulong Parent)>();
        foreach (var task in new TaskRegistry(_process, _objects, _memory).Find(_debug))
        {
            try
            {
                if (FieldsOf(task) is not { Pending: true } fields) continue;
                result.Add(Read(task, fields) with { Tid = LoopThread(M.ReadU64(task + FutureLoop)) });
                if (_debug is not null) awaitedBy.AddRange(AwaitedBy(task).Select(parent => (task, parent)));
            }
            catch (ProcessMemoryException) { } // gone while read: it finished
        }
        // 3.14+: a task names the tasks awaiting it (a TaskGroup's children their parent), which its parent's own
        // await (on the group's completion future) does not.
        foreach (var group in awaitedBy.GroupBy(e => e.Parent))
        {
            var index = result.FindIndex(t => t.Id == group.Key);
            if (index >= 0) result[index] = result[index] with { WaitsFor = [.. result[index].WaitsFor.Union(ByName(group.Select(e => e.Child)))] };
        }
        return InTreeOrder(result);
    }

    /// <summary>
    /// The coroutine frames <paramref name="task"/> is suspended in, innermost first, read in a pass of its own (empty where
    /// it runs, has not started, or is gone): record --tasks' awaiters, each where it awaits the task below it.
    /// </summary>
    public IReadOnlyList<StackFrame> SuspendedIn(ulong task)
    {
        (_memory, _objects) = FreshView();
        _locals = null;
        _tidsByIdent = null;
        try
        {
            if (FieldsOf(task) is not { Pending: true } fields) return [];
            var read = Read(task, fields);
            return read.State == AsyncTaskState.Waiting ? read.Frames : [];
        }
        catch (ProcessMemoryException) { return []; } // gone while read: it finished
    }

    /// <summary>
    /// The tasks as a tree reads, whatever order the registry's hash table kept: each task no other waits for (by name),
    /// then the tasks it waits for under it, depth first.
    /// </summary>
    private static List<AsyncTask> InTreeOrder(List<AsyncTask> tasks)
    {
        var byId = tasks.ToDictionary(t => t.Id);
        var waitedFor = tasks.SelectMany(t => t.WaitsFor).ToHashSet();
        var ordered = new List<AsyncTask>(tasks.Count);
        var placed = new HashSet<ulong>();
        // Depth first without recursion: a chain of tasks each awaiting the next can be thousands long.
        var pending = new Stack<AsyncTask>();
        void Place(AsyncTask root)
        {
            pending.Push(root);
            while (pending.TryPop(out var task))
            {
                if (!placed.Add(task.Id)) continue;
                ordered.Add(task);
                for (var i = task.WaitsFor.Count - 1; i >= 0; i--)
                    if (byId.TryGetValue(task.WaitsFor[i], out var child) && !placed.Contains(child.Id)) pending.Push(child);
            }
        }
        var byName = tasks.OrderBy(t => t.Name, StringComparer.Ordinal).ThenBy(t => t.Id).ToList();
        foreach (var root in byName.Where(t => !waitedFor.Contains(t.Id))) Place(root);
        foreach (var rest in byName) Place(rest); // tasks waiting on each other in a ring
        return ordered;
    }

    /// <summary>What a task's fields say: whether it is pending (its future's state), what it waits on, its coroutine and name.</summary>
    private readonly record struct TaskFields(bool Pending, ulong Waiter, ulong Coroutine, ulong NameObject);

    /// <summary>The future's state and the task's waiter, coroutine and name, in one read.</summary>
    private TaskFields FieldsOf(ulong task)
    {
        int start = Math.Min(_layout.FutureState, _layout.TaskWaiter);
        var fields = M.ReadBytes(task + (ulong)start, _layout.TaskName + 8 - start);
        ulong Field(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(fields.AsSpan(offset - start));
        return new(BinaryPrimitives.ReadInt32LittleEndian(fields.AsSpan(_layout.FutureState - start)) == 0,
            Field(_layout.TaskWaiter), Field(_layout.TaskCoro), Field(_layout.TaskName));
    }

    private AsyncTask Read(ulong task, TaskFields fields)
    {
        var (waiter, coroutine, nameObject) = (fields.Waiter, fields.Coroutine, fields.NameObject);
        var name = NameOf(nameObject);
        var frames = new List<StackFrame>();
        var frameLocals = _locals is null ? null : new List<IReadOnlyList<LocalVariable>>();
        var state = AsyncTaskState.Waiting;
        ulong awaited = 0, group = 0, coroutineCode = 0;
        for (int depth = 0; depth < MaxChain && IsCoroutine(coroutine); depth++)
        {
            if (FrameOf(coroutine) is not ulong frame) break;
            if (depth == 0) coroutineCode = CodeOf(frame);
            if (_frames.ReadFrame(frame, _memory) is { } named)
            {
                frames.Add(named);
                frameLocals?.Add(_locals!.Read(frame, M.ReadU64(frame + (ulong)_process.Layout.Frame.Code) & ~_process.Layout.Frame.CodeTagMask));
                if (IsTaskGroupExit(named)) group = M.ReadU64(frame + CoroutineLayout.FrameLocalsPlus311); // self
            }
            var (coroutineState, top) = Suspension(coroutine, frame);
            if (coroutineState != AsyncTaskState.Waiting)
            {
                if (depth == 0) state = coroutineState;
                break;
            }
            awaited = top;
            // async for: the await is on the async generator's asend (or athrow) object, which holds the generator.
            var next = _objects.IsInstance(top, "async_generator_asend") || _objects.IsInstance(top, "async_generator_athrow") ? M.ReadU64(top + 16) : top;
            // A plain generator a coroutine awaits (types.coroutine's, as asyncio.sleep(0)'s __sleep0) ends the chain, as
            // CPython's own readers (asyncio ps, its sampler's async-aware mode) end it.
            if (_objects.IsInstance(coroutine, "coroutine") && _objects.IsInstance(next, "generator")) break;
            coroutine = next;
        }
        frames.Reverse(); // innermost first, as a thread's stack
        frameLocals?.Reverse();
        var waitsFor = new List<ulong>();
        string? waitsOn = null;
        if (state == AsyncTaskState.Waiting)
        {
            // The chain ends at a future's iterator (await fut), or at the future itself.
            if (awaited != 0 && _objects.IsInstance(awaited, "_asyncio.FutureIter")) awaited = M.ReadU64(awaited + 16);
            foreach (var candidate in awaited == waiter ? [waiter] : new[] { waiter, awaited })
            {
                if (candidate == 0 || waitsFor.Contains(candidate)) continue;
                if (_objects.IsInstance(candidate, TaskRegistry.TaskType)) waitsFor.Add(candidate);
                else if (_objects.IsInstance(candidate, "_GatheringFuture") && _objects.Attribute(candidate, "_children") is ulong children && _objects.IsInstance(children, "list"))
                    waitsFor.AddRange(_objects.ListItems(children).Where(c => _objects.IsInstance(c, TaskRegistry.TaskType) && !waitsFor.Contains(c)));
            }
            // Before 3.14 a TaskGroup's parent waits on a future of the group's own: its children are the group's _tasks.
            if (group != 0 && _objects.Attribute(group, "_tasks") is ulong groupTasks && _objects.IsInstance(groupTasks, "set"))
                waitsFor.AddRange(ByName(_objects.SetItems(groupTasks).Where(c => _objects.IsInstance(c, TaskRegistry.TaskType) && !waitsFor.Contains(c))));
            if (waitsFor.Count == 0 && (waiter != 0 ? waiter : awaited) is var other and not 0 && !IsCoroutine(other))
                waitsOn = _objects.IsInstance(other, "_asyncio.Future") ? "Future" : _objects.TypeName(other);
        }
        return new AsyncTask(task, name, state, frames, waitsFor, waitsOn, Locals: frameLocals, Coroutine: fields.Coroutine, CoroutineCode: coroutineCode, NameObject: nameObject);
    }

    /// <summary>The process's memory as one pass reads it: blocks and types read once in the pass.</summary>
    private (BlockCachedMemory, ObjectReader) FreshView()
    {
        var memory = new BlockCachedMemory(_process.Memory);
        return (memory, new ObjectReader(memory, _process.Binary.Facts, _process.Layout.Str, rememberTypes: true));
    }

    /// <summary>The thread running the loop (its <c>_thread_id</c>, set while run_forever runs), once per loop.</summary>
    private int? LoopThread(ulong loop)
    {
        if (_tidsByIdent is null || loop == 0) return null;
        if (_loopThreads.TryGetValue(loop, out var known)) return known;
        int? tid = null;
        if (_objects.Attribute(loop, "_thread_id") is ulong ident && _objects.IsInstance(ident, "int")
            && _objects.Int(ident, maxDigits: 3) is BigInteger value && value > 0 && value <= ulong.MaxValue
            && _tidsByIdent.TryGetValue((ulong)value, out var found))
            tid = found;
        return _loopThreads[loop] = tid;
    }

    /// <summary>
    /// 3.11–3.13: a frame of <c>TaskGroup.__aexit__</c>, where a group's parent waits for its children (3.14+ tasks say who
    /// awaits them, <see cref="AwaitedBy"/>); its first local is the group.
    /// </summary>
    private bool IsTaskGroupExit(StackFrame frame) =>
        _debug is null && _layout.Slot == AwaitedSlot.LocalsPlusIndex && frame.Function == "TaskGroup.__aexit__"
        && frame.File.EndsWith("asyncio/taskgroups.py", StringComparison.Ordinal);

    /// <summary>The coroutine's frame: behind a pointer up to 3.10 (null once it finished), inside it from 3.11.</summary>
    private ulong? FrameOf(ulong coroutine) =>
        _layout.InlineFrame is int inline ? coroutine + (ulong)inline
        : M.ReadU64(coroutine + (ulong)_layout.FramePointer!.Value) is var frame and not 0 ? frame : null;

    /// <summary>Whether the coroutine waits in an await (and the object on its stack's top), runs, or has not started.</summary>
    private (AsyncTaskState State, ulong Top) Suspension(ulong coroutine, ulong frame)
    {
        if (_layout.FrameState is int at)
        {
            var state = (sbyte)M.ReadBytes((_layout.StateInFrame ? frame : coroutine) + (ulong)at, 1)[0];
            if (state == _layout.Created) return (AsyncTaskState.NotStarted, 0);
            if (!_layout.IsSuspended(state)) return (AsyncTaskState.Running, 0);
        }
        ulong top;
        switch (_layout.Slot)
        {
            case AwaitedSlot.StackTopPointer:
                // 3.8–3.9: no state byte; f_stacktop is null while the frame runs, f_lasti −1 before it starts.
                ulong pointer = M.ReadU64(frame + (ulong)_layout.StackField);
                if (pointer == 0) return (AsyncTaskState.Running, 0);
                int lasti = M.ReadI32(frame + (ulong)_process.Layout.Frame.Position);
                if (lasti == -1) return (AsyncTaskState.NotStarted, 0);
                top = SuspendedInYieldFrom(frame, lasti + 2) ? M.ReadU64(pointer - 8) : 0;
                break;
            case AwaitedSlot.ValueStackDepth:
                int depth = M.ReadI32(frame + (ulong)_layout.StackField);
                top = depth > 0 && SuspendedInYieldFrom(frame, (M.ReadI32(frame + (ulong)_process.Layout.Frame.Position) + 1) * 2)
                    ? M.ReadU64(M.ReadU64(frame + CoroutineLayout.FrameValueStack) + 8 * (ulong)(depth - 1)) : 0;
                break;
            case AwaitedSlot.LocalsPlusIndex:
                int index = M.ReadI32(frame + (ulong)_layout.StackField);
                top = index > 0 ? M.ReadU64(frame + CoroutineLayout.FrameLocalsPlus311 + 8 * (ulong)(index - 1)) : 0;
                break;
            default:
                ulong stackPointer = M.ReadU64(frame + (ulong)_layout.StackField);
                top = stackPointer > frame ? M.ReadU64(stackPointer - 8 * (ulong)_layout.AwaitedBack) & ~3UL : 0; // tagged _PyStackRef
                break;
        }
        return (AsyncTaskState.Waiting, top);
    }

    /// <summary>
    /// 3.8–3.10: whether the frame is suspended in a <c>YIELD_FROM</c> (an await), its next instruction at byte
    /// <paramref name="next"/> of co_code, as <c>_PyGen_yf</c> asks: only then is its stack's top what it awaits. A
    /// generator-based coroutine suspended at a bare <c>yield</c> (a task's step handing the loop back) awaits nothing,
    /// and the word under its stack's top is no object. (From 3.11 a task's coroutine is a coroutine, which cannot
    /// yield bare, and the chain ends at a generator a coroutine awaits.)
    /// </summary>
    private bool SuspendedInYieldFrom(ulong frame, int next)
    {
        if (next < 0 || _process.Layout.Code.CodeBytes is not int codeBytes) return false;
        var bytes = M.ReadU64(CodeOf(frame) + (ulong)codeBytes);
        return bytes != 0 && M.ReadBytes(bytes + BytesData + (ulong)next, 1)[0] == YieldFrom;
    }

    // PyBytesObject.ob_sval (after the header, ob_size and ob_shash), and the YIELD_FROM opcode of 3.8–3.10.
    private const ulong BytesData = 32;
    private const byte YieldFrom = 72;

    private bool IsCoroutine(ulong address) => address != 0
        && (_objects.IsInstance(address, "coroutine") || _objects.IsInstance(address, "generator") || _objects.IsInstance(address, "async_generator"));

    /// <summary>
    /// 3.14+: the tasks awaiting <paramref name="task"/>, each once, read in a pass of its own (none before 3.14, or where
    /// the task is gone): record --tasks' chains.
    /// </summary>
    public IReadOnlyList<ulong> AwaitersOf(ulong task)
    {
        if (_debug is null) return [];
        (_memory, _objects) = FreshView();
        try
        {
            return AwaitedBy(task).Distinct().ToList();
        }
        catch (ProcessMemoryException) { return []; } // gone while read
    }

    /// <summary>
    /// The code object of <paramref name="task"/>'s coroutine, read in a pass of its own; 0 where there is none to read
    /// (gone, finished, or not a coroutine CPython runs in a frame of its own): record --tasks starts a sample taken in
    /// the task at the outermost frame of that code.
    /// </summary>
    public ulong CoroutineCodeOf(ulong task)
    {
        (_memory, _objects) = FreshView();
        try
        {
            var coroutine = M.ReadU64(task + (ulong)_layout.TaskCoro);
            return IsCoroutine(coroutine) && FrameOf(coroutine) is ulong frame ? CodeOf(frame) : 0;
        }
        catch (ProcessMemoryException) { return 0; } // gone while read
    }

    /// <summary>
    /// Whether <paramref name="task"/> is still pending with the coroutine, name object and name it had when read, in a
    /// pass of its own: a task freed and another made at its address (a task made after another ends often takes its
    /// task's, its coroutine's and its name's addresses) is told apart unless it also got the same name.
    /// </summary>
    public bool IsStill(ulong task, ulong coroutine, ulong nameObject, string name)
    {
        (_memory, _objects) = FreshView();
        try
        {
            return FieldsOf(task) is { Pending: true } fields && fields.Coroutine == coroutine && fields.NameObject == nameObject && NameOf(nameObject) == name;
        }
        catch (ProcessMemoryException) { return false; } // gone
    }

    /// <summary>The code object a frame runs (its <c>f_code</c> / <c>f_executable</c>, untagged).</summary>
    private ulong CodeOf(ulong frame) => M.ReadU64(frame + (ulong)_process.Layout.Frame.Code) & ~_process.Layout.Frame.CodeTagMask;

    /// <summary>3.14+: the tasks this one says await it (task_awaited_by: one task, or a set of them).</summary>
    private IEnumerable<ulong> AwaitedBy(ulong task)
    {
        ulong awaitedBy = M.ReadU64(task + (ulong)_debug!.TaskAwaitedBy);
        if (awaitedBy == 0) return [];
        bool isSet = M.ReadBytes(task + (ulong)_debug.TaskAwaitedByIsSet, 1)[0] != 0;
        return (isSet ? _objects.SetItems(awaitedBy) : [awaitedBy]).Where(t => _objects.IsInstance(t, TaskRegistry.TaskType));
    }

    /// <summary>Tasks out of a set (whose order is its hash table's) by name, then id: the same group reads the same each time.</summary>
    private IEnumerable<ulong> ByName(IEnumerable<ulong> tasks) =>
        tasks.Select(t => (Task: t, Name: NameOf(M.ReadU64(t + (ulong)_layout.TaskName)))).OrderBy(t => t.Name, StringComparer.Ordinal).ThenBy(t => t.Task).Select(t => t.Task);

    private string NameOf(ulong name) => TaskName.Of(_objects, name) ?? "?";
}
