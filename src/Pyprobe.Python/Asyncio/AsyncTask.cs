using Pyprobe.Python.Profiling;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Asyncio;

/// <summary>Where an asyncio task is: in an await, running now (its stack is its thread's), or scheduled and not started.</summary>
public enum AsyncTaskState
{
    Waiting,
    Running,
    NotStarted,
}

/// <summary>
/// A pending asyncio task: its <c>id()</c>, name, state, its coroutines' frames innermost first (the awaits it is
/// suspended in, down to the one that awaits a future), the tasks it waits for (what it awaits directly, a
/// <c>gather()</c>'s children, and from 3.14 the tasks that say they are awaited by it, as a TaskGroup's), and what else
/// it waits on (<c>"Future"</c>, or the awaited object's type).
/// </summary>
/// <param name="Tid">The thread running the task's event loop (as this machine's /proc knows it), null when its loop is not running.</param>
/// <param name="Locals">With locals asked for: each frame's variables, in the order of <see cref="Frames"/>.</param>
/// <param name="Coroutine">The task's coroutine (<c>task_coro</c>).</param>
/// <param name="NameObject">The task's name object (<c>task_name</c>).</param>
/// <param name="CoroutineCode">The code object of the coroutine's frame, 0 where it has none to read (finished, or not run in a frame of its own).</param>
public sealed record AsyncTask(ulong Id, string Name, AsyncTaskState State, IReadOnlyList<StackFrame> Frames, IReadOnlyList<ulong> WaitsFor, string? WaitsOn,
    int? Tid = null, IReadOnlyList<IReadOnlyList<LocalVariable>>? Locals = null, ulong Coroutine = 0, ulong CoroutineCode = 0, ulong NameObject = 0);
