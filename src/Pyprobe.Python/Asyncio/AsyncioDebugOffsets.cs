using System.Buffers.Binary;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// 3.14+: where the <c>_asyncio</c> module keeps its tasks, as it publishes them for external debuggers in its
/// <c>.AsyncioDebug</c> section (struct _Py_AsyncioModuleDebugOffsets, thirteen u64): every native task is on a linked
/// list of its thread (<c>_PyThreadStateImpl.asyncio_tasks_head</c>) or, once that thread ended, of its interpreter,
/// through the <c>task_node</c> inside the task. The section is a static initialiser, so the file's bytes are what the
/// process holds.
/// </summary>
/// <param name="TaskAwaitedBy">offsetof(TaskObj, task_awaited_by): the task awaiting this one, or a set of them (<see cref="TaskAwaitedByIsSet"/>).</param>
/// <param name="TaskAwaitedByIsSet">A byte: task_awaited_by holds a set.</param>
public sealed record AsyncioDebugOffsets(int TaskName, int TaskAwaitedBy, int TaskIsTask, int TaskAwaitedByIsSet, int TaskCoro, int TaskNode,
    int InterpreterTasksHead, int ThreadRunningLoop, int ThreadRunningTask, int ThreadTasksHead)
{
    public const string SectionName = ".AsyncioDebug";
    private const int Words = 13;

    /// <summary>The offsets in <paramref name="elf"/>'s section, or null where it has none (or not the 3.14 form).</summary>
    public static AsyncioDebugOffsets? Read(ElfImage elf)
    {
        if (elf.FindSection(SectionName) is not { HasFileData: true, Size: >= Words * 8 } section) return null;
        var bytes = elf.ReadSection(section, Words * 8);
        int W(int i) => checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8 * i)));
        // task object: size, name, awaited_by, is_task, awaited_by_is_set, coro, node; interpreter: size, tasks_head;
        // thread: size, running_loop, running_task, tasks_head.
        var offsets = new AsyncioDebugOffsets(W(1), W(2), W(3), W(4), W(5), W(6), W(8), W(10), W(11), W(12));
        int taskSize = W(0);
        return offsets.TaskNode + 16 <= taskSize && offsets.TaskCoro < taskSize ? offsets : null;
    }
}
