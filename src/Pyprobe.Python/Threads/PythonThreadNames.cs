using Pyprobe.Python.Objects;

namespace Pyprobe.Python.Threads;

/// <summary>
/// The names a process's Python code gave its threads (<c>threading.Thread.name</c>: "MainThread", "worker-3", …), read
/// from its memory the way py-spy does: each interpreter's <c>sys.modules["threading"]._active</c>, the dict of every
/// running Thread, and each Thread's <c>_native_id</c> and <c>_name</c>. The kernel's name of a thread is the
/// executable's (<c>python3.12</c>) for every thread up to 3.13, and from 3.14 the first 15 bytes of the Python name.
/// Read only; a process that never imported threading, or memory that does not read as expected, gives no names.
/// </summary>
public sealed class PythonThreadNames(CPythonProcess process)
{
    private static readonly IReadOnlyDictionary<int, string> None = new Dictionary<int, string>();
    private readonly ObjectReader _objects = new(process);
    // Each interpreter's _active dict, once found: the module keeps the same dict for its life (fork clears it in place).
    private readonly Dictionary<ulong, ulong> _activeDicts = [];

    public int Pid => process.Pid;

    /// <summary>Each running Thread's name by its id inside the process's pid namespace (gettid there, as native_thread_id).</summary>
    public IReadOnlyDictionary<int, string> Read()
    {
        try
        {
            var names = new Dictionary<int, string>();
            foreach (var interpreter in process.Interpreters())
            {
                if (ActiveThreads(interpreter) is not ulong active) continue;
                foreach (var (_, thread) in _objects.DictEntries(active))
                    if (NameOf(thread) is var (id, name)) names[id] = name;
            }
            return names;
        }
        catch (IOException) { return None; } // ProcessMemoryException included: the process is going away, or this is not what it seemed
    }

    private (int Id, string Name)? NameOf(ulong thread)
    {
        // _native_id is None until the thread has started running.
        if (_objects.Attribute(thread, "_native_id") is not ulong idObject || !_objects.IsOfType(idObject, "int")) return null;
        if (_objects.Int(idObject, maxDigits: 2) is not { } id || id <= 0 || id > int.MaxValue) return null;
        if (_objects.Attribute(thread, "_name") is not ulong nameObject || !_objects.IsOfType(nameObject, "str")) return null;
        return _objects.Str(nameObject) is { } name ? ((int)id, name) : null;
    }

    private ulong? ActiveThreads(ulong interpreter)
    {
        if (_activeDicts.TryGetValue(interpreter, out var known)) return known;
        if (_objects.ModuleGlobals(interpreter, process.Layout.Interpreter.Modules, "threading") is not ulong globals) return null;
        if (_objects.DictItem(globals, "_active") is not ulong active || !_objects.IsOfType(active, "dict")) return null;
        _activeDicts[interpreter] = active;
        return active;
    }
}
