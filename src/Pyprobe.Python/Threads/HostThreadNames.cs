using Pyprobe.Python.Processes;
using Pyprobe.Usdt;

namespace Pyprobe.Python.Threads;

/// <summary>
/// Names threads known by their host ids (the ids samples and events carry): the name the process's Python gave the
/// thread (<c>threading.Thread.name</c>) where it has one, else the kernel's. A process in another pid namespace keeps
/// the ids it sees, which are mapped to the host's. A process's names are read again when a thread not among them is
/// asked for (a thread is asked for after its first sample or event, by when a running thread is in
/// <c>threading._active</c>).
/// </summary>
/// <param name="attachOnDemand">Find the runtime of a process not <see cref="Add"/>ed when one of its threads is asked for (owned, disposed with this).</param>
public sealed class HostThreadNames(bool attachOnDemand = false) : IDisposable
{
    private readonly Dictionary<int, ProcessThreads?> _processes = [];
    private readonly List<CPythonProcess> _owned = [];

    /// <summary>Names the threads of <paramref name="process"/> from its memory (the caller keeps owning it).</summary>
    public void Add(CPythonProcess process) => _processes[process.Pid] = new ProcessThreads(new PythonThreadNames(process), PidNamespace.Of(process.Pid) is not null);

    public void Remove(int pid) => _processes.Remove(pid);

    /// <summary>The name of host thread <paramref name="tid"/> of <paramref name="pid"/>, or null when it has none (it exited).</summary>
    public string? Name(int pid, int tid)
    {
        if (Threads(pid) is { } process)
        {
            if (process.Names.TryGetValue(tid, out var known)) return known;
            process.Reread();
            if (process.Names.TryGetValue(tid, out known)) return known;
        }
        return TaskState.Name(pid, tid);
    }

    private ProcessThreads? Threads(int pid)
    {
        if (_processes.TryGetValue(pid, out var known) || !attachOnDemand) return known;
        try
        {
            var process = CPythonProcess.Attach(pid);
            _owned.Add(process);
            Add(process);
        }
        catch (Exception e) when (e is UnsupportedRuntimeException or UsdtException or IOException or UnauthorizedAccessException)
        {
            _processes[pid] = null; // not a runtime pyprobe can read: the kernel's names
        }
        return _processes[pid];
    }

    public void Dispose()
    {
        foreach (var process in _owned) process.Dispose();
        _owned.Clear();
        _processes.Clear();
    }

    private sealed class ProcessThreads(PythonThreadNames reader, bool otherNamespace)
    {
        public Dictionary<int, string> Names { get; private set; } = [];

        public void Reread()
        {
            var names = reader.Read();
            if (!otherNamespace)
            {
                Names = new Dictionary<int, string>(names);
                return;
            }
            var hostIds = PidNamespace.HostThreadIds(reader.Pid);
            Names = names.Where(n => hostIds.ContainsKey(n.Key)).ToDictionary(n => hostIds[n.Key], n => n.Value);
        }
    }
}
