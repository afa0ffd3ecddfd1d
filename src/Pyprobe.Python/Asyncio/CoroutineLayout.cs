using Pyprobe.Python.Versions;

namespace Pyprobe.Python.Asyncio;

/// <summary>Where a suspended coroutine keeps the object it awaits: the top of its frame's value stack.</summary>
public enum AwaitedSlot
{
    /// <summary>3.8–3.9: PyFrameObject.f_stacktop, a pointer past the top (null while the frame runs).</summary>
    StackTopPointer,
    /// <summary>3.10: PyFrameObject.f_valuestack and the int f_stackdepth.</summary>
    ValueStackDepth,
    /// <summary>3.11–3.13: _PyInterpreterFrame.stacktop, an int index into localsplus.</summary>
    LocalsPlusIndex,
    /// <summary>3.14+: _PyInterpreterFrame.stackpointer, a pointer past the top; the slots are tagged _PyStackRefs.</summary>
    StackPointer,
}

/// <summary>
/// What reading asyncio tasks out of a process needs of one CPython version (x86-64, GIL build). The C Task
/// (<c>_asyncio.Task</c>, TaskObj) keeps <c>task_fut_waiter</c>, <c>task_coro</c> and <c>task_name</c> one after the
/// other after the Future's fields; a coroutine keeps its frame behind a pointer (≤ 3.10) or inline (3.11+). Offsets
/// found with ctypes on the pyenv 3.8.18–3.13.0 and Debian 3.9.2–3.15.2 builds (a task suspended in a known await,
/// its words compared with <c>id()</c> of its coroutine, waiter and name), and for 3.14+ the same as the
/// <c>.AsyncioDebug</c> section CPython publishes for external debuggers.
/// </summary>
/// <param name="TaskCoro">offsetof(TaskObj, task_coro); the waiter is 8 before it, the name 8 after.</param>
/// <param name="FutureState">offsetof(FutureObj, fut_state): an int, 0 while pending (1 cancelled, 2 finished).</param>
/// <param name="FramePointer">≤ 3.10: offsetof(PyGenObject, gi_frame), a PyFrameObject* (null once finished).</param>
/// <param name="InlineFrame">3.11+: offsetof(PyGenObject, gi_iframe), the _PyInterpreterFrame inside the generator.</param>
/// <param name="FrameState">Where the int8 frame state is: in the generator (3.11+, gi_frame_state) or, 3.10, in the
/// frame (f_state); null for 3.8–3.9, where a null f_stacktop means running and f_lasti −1 not started.</param>
/// <param name="StateInFrame">3.10: <see cref="FrameState"/> is an offset into the frame, not the generator.</param>
/// <param name="Created">The state of a coroutine not started yet.</param>
/// <param name="Executing">The state of a coroutine running now (its frame is on a thread's stack).</param>
/// <param name="AwaitedBack">How many slots below the top the awaited object is (3.15: 2, the SEND's receiver under a null).</param>
/// <param name="ThreadRunningTask">3.14+: offsetof(_PyThreadStateImpl, asyncio_running_task) in a GIL release build, for
/// a process whose <c>_asyncio</c> (and its <c>.AsyncioDebug</c> section) is not loaded yet: 872 on 3.14, 1032 on 3.15.</param>
/// <param name="FrameGenerator">≤ 3.10: offsetof(PyFrameObject, f_gen), the generator or coroutine a frame runs (null for a
/// function's); found as the offsets above (the word of a suspended generator's frame equal to its <c>id()</c>).</param>
public sealed record CoroutineLayout(int TaskCoro, int FutureState, int? FramePointer, int? InlineFrame, int? FrameState, bool StateInFrame,
    sbyte Created, sbyte Executing, AwaitedSlot Slot, int StackField, int AwaitedBack = 1, int? ThreadRunningTask = null, int? FrameGenerator = null)
{
    public int TaskWaiter => TaskCoro - 8;
    public int TaskName => TaskCoro + 8;

    /// <summary>Whether a coroutine in <paramref name="state"/> is suspended (in an await, for an async def): its value stack holds what it awaits.</summary>
    public bool IsSuspended(sbyte state) => Executing == 0 ? state < 0 && state != Created : state > Created && state < Executing;

    // PyFrameObject (3.8–3.10) and _PyInterpreterFrame (3.11+) fields the walk reads.
    public const int FrameValueStack = 64;      // 3.10 f_valuestack
    public const int FrameStackDepth = 80;      // 3.10 f_stackdepth
    public const int FrameLocalsPlus311 = 72;   // 3.11–3.13 localsplus

    public static CoroutineLayout? For(PythonVersion version) => (version.Major, version.Minor) switch
    {
        (3, 8) => new(112, 72, FramePointer: 16, null, null, false, 0, 0, AwaitedSlot.StackTopPointer, StackField: 72, FrameGenerator: 96),
        (3, 9) => new(152, 80, FramePointer: 16, null, null, false, 0, 0, AwaitedSlot.StackTopPointer, StackField: 72, FrameGenerator: 96),
        (3, 10) => new(160, 88, FramePointer: 16, null, FrameState: 108, StateInFrame: true, -2, 0, AwaitedSlot.ValueStackDepth, StackField: 80, FrameGenerator: 88),
        (3, 11) => new(136, 88, null, InlineFrame: 80, FrameState: 75, false, -2, 0, AwaitedSlot.LocalsPlusIndex, StackField: 64),
        (3, 12) => new(136, 88, null, InlineFrame: 72, FrameState: 67, false, -2, 0, AwaitedSlot.LocalsPlusIndex, StackField: 64),
        (3, 13) => new(120, 96, null, InlineFrame: 72, FrameState: 67, false, -3, 0, AwaitedSlot.LocalsPlusIndex, StackField: 64),
        (3, 14) => new(128, 104, null, InlineFrame: 72, FrameState: 67, false, -3, 0, AwaitedSlot.StackPointer, StackField: 64, ThreadRunningTask: 872),
        (3, 15) => new(128, 104, null, InlineFrame: 72, FrameState: 67, false, 0, 4, AwaitedSlot.StackPointer, StackField: 64, AwaitedBack: 2, ThreadRunningTask: 1032),
        _ => null,
    };
}
