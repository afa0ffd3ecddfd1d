using Pyprobe.Python.Objects;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// <c>record --tasks</c>: the names of the tasks samples were taken in (the kernel sends each sample's running task's
/// address), read from the process when its samples are added. A task's name object is read each time and names are
/// kept by (task, name object): a task freed and another made at its address is told apart unless it also got the same
/// name object; a task gone before its samples are read is named by its address.
/// </summary>
public sealed class RunningTaskNames
{
    private const int MaxNames = 1 << 16;
    private readonly Dictionary<int, (ObjectReader Objects, IMemoryReader Memory, int NameOffset)> _processes = [];
    private readonly Dictionary<(int Pid, ulong Task, ulong Name), string> _names = [];

    /// <summary>Names the tasks of <paramref name="process"/> (its memory is read through it, not owned).</summary>
    public void Add(CPythonProcess process, int taskNameOffset) =>
        _processes[process.Pid] = (new ObjectReader(process), process.Memory, taskNameOffset);

    public void Remove(int pid) => _processes.Remove(pid);

    /// <summary>The name of the task at <paramref name="task"/> in <paramref name="pid"/>; null for no task (0).</summary>
    public string? Name(int pid, ulong task)
    {
        if (task == 0 || !_processes.TryGetValue(pid, out var p)) return null;
        try
        {
            var nameObject = p.Memory.ReadU64(task + (ulong)p.NameOffset);
            if (_names.TryGetValue((pid, task, nameObject), out var known)) return known;
            var name = TaskName.Of(p.Objects, nameObject) ?? $"0x{task:x}";
            if (_names.Count >= MaxNames) _names.Clear();
            return _names[(pid, task, nameObject)] = name;
        }
        catch (IOException) { return $"0x{task:x}"; } // ProcessMemoryException included: gone
    }
}
