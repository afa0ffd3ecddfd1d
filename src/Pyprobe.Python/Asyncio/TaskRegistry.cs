using Pyprobe.Python.Objects;
using Pyprobe.Python.Runtime;
using Pyprobe.Usdt.Elf;
using Pyprobe.Usdt;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// Finds every asyncio task of a process where asyncio keeps them (read only): up to 3.11 the WeakSet
/// <c>asyncio.tasks._all_tasks</c>; 3.12–3.13 the WeakSet <c>_scheduled_tasks</c> and the set <c>_eager_tasks</c>; from
/// 3.14 each thread's and each interpreter's linked list of native tasks (<see cref="AsyncioDebugOffsets"/>), and the
/// WeakSet <c>_scheduled_tasks</c> for tasks of other classes. A process that never imported asyncio has none.
/// </summary>
public sealed class TaskRegistry(CPythonProcess process, ObjectReader objects, IMemoryReader memory)
{
    private const int MaxTasks = 1 << 16;
    /// <summary>The C Task's type name; subclasses derive from it, and keep its layout.</summary>
    public const string TaskType = "_asyncio.Task";

    /// <summary>The task objects' addresses, each once, in the order found.</summary>
    public List<ulong> Find(AsyncioDebugOffsets? lists)
    {
        var tasks = new List<ulong>();
        var seen = new HashSet<ulong>();
        void Add(ulong task)
        {
            if (task != 0 && tasks.Count < MaxTasks && seen.Add(task)) tasks.Add(task);
        }
        foreach (var interp in process.Interpreters())
        {
            if (lists is not null)
            {
                foreach (var tstate in process.ThreadStates(interp))
                    foreach (var task in LinkedTasks(tstate + (ulong)lists.ThreadTasksHead, lists)) Add(task);
                foreach (var task in LinkedTasks(interp + (ulong)lists.InterpreterTasksHead, lists)) Add(task);
            }
            if (objects.ModuleGlobals(interp, process.Layout.Interpreter.Modules, "asyncio.tasks") is not ulong globals) continue;
            foreach (var name in new[] { "_all_tasks", "_scheduled_tasks", "_eager_tasks" })
            {
                if (objects.DictItem(globals, name) is not ulong set) continue;
                // A WeakSet keeps weak references in its 'data' set; _eager_tasks is a plain set of tasks.
                if (objects.IsInstance(set, "WeakSet") && objects.Attribute(set, "data") is ulong data) set = data;
                if (!objects.IsInstance(set, "set")) continue;
                foreach (var item in objects.SetItems(set))
                {
                    var task = IsWeakReference(item) ? ReferentOf(item) : item;
                    if (objects.IsInstance(task, TaskType)) Add(task);
                }
            }
        }
        return tasks;
    }

    /// <summary>
    /// The <c>_asyncio</c> module's debug offsets (3.14+): in the interpreter's own file where the module is built in
    /// (Debian's 3.15), else in the extension file the process mapped. Null before 3.14, or where asyncio is not loaded.
    /// </summary>
    public static AsyncioDebugOffsets? DebugOffsets(CPythonProcess process)
    {
        if (!process.Binary.Version.IsAtLeast(3, 14)) return null;
        if (AsyncioDebugOffsets.Read(process.Binary.Elf) is { } builtIn) return builtIn;
        var module = ProcMaps.Read(process.Pid).Select(m => m.Path).FirstOrDefault(p => p is not null && Path.GetFileName(p).StartsWith("_asyncio.", StringComparison.Ordinal));
        if (module is null) return null;
        try
        {
            return AsyncioDebugOffsets.Read(ElfImage.Open($"/proc/{process.Pid}/root{module}"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsdtException) { return null; }
    }

    private IEnumerable<ulong> LinkedTasks(ulong head, AsyncioDebugOffsets lists)
    {
        ulong node = memory.ReadU64(head);
        for (int i = 0; node != 0 && node != head && i < MaxTasks; i++)
        {
            yield return node - (ulong)lists.TaskNode;
            node = memory.ReadU64(node);
        }
    }

    // PyWeakReference.wr_object: Py_None once the referent is gone (checked by the caller's type test).
    private ulong ReferentOf(ulong weakref) => memory.ReadU64(weakref + 16);

    private bool IsWeakReference(ulong item) => objects.IsInstance(item, "weakref.ReferenceType") || objects.IsInstance(item, "weakref");
}
