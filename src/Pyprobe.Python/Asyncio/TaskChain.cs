using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// What <c>record --tasks</c> puts a sample taken in an asyncio task under, and where the task's own frames start.
/// </summary>
/// <param name="Roots">The tasks awaiting it, outermost first, each as <c>task NAME</c> and the frames it awaits in, then the task's own <c>task NAME</c>.</param>
/// <param name="CoroutineCode">
/// The code object of the task's coroutine, or 0 where unknown: the sample keeps its frames from the outermost of that
/// code inwards; the event loop's frames that ran the step (<c>&lt;module&gt;;run;…;Handle._run</c>), the same under every
/// task, are left out, as CPython's own sampler draws a task.
/// </param>
public sealed record TaskChain(StackFrame[] Roots, ulong CoroutineCode);
