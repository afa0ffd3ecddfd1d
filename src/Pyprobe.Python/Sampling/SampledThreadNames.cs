using Pyprobe.Python.Threads;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// Names the thread roots of <c>--threads</c>: the name the process's Python gave the thread (<c>threading.Thread.name</c>)
/// where it has one, else the kernel's. Samples carry the host's thread ids; a process in another pid namespace keeps
/// the ids it sees, which are mapped to the host's. A process's names are read again when a thread not among them is
/// asked for (its samples are named when the ring is drained, so a running thread is in <c>threading._active</c> by then).
/// </summary>
public sealed class SampledThreadNames
{
    private readonly Dictionary<int, ProcessThreads> _processes = [];

    public void Add(CPythonProcess process) => _processes[process.Pid] = new ProcessThreads(new PythonThreadNames(process), PidNamespace.Of(process.Pid) is not null);

    public void Remove(int pid) => _processes.Remove(pid);

    /// <summary>The name of host thread <paramref name="tid"/> of <paramref name="pid"/>, or null when it has none (it exited).</summary>
    public string? Name(int pid, int tid)
    {
        if (_processes.TryGetValue(pid, out var process))
        {
            if (process.Names.TryGetValue(tid, out var known)) return known;
            process.Reread();
            if (process.Names.TryGetValue(tid, out known)) return known;
        }
        try { return File.ReadAllText($"/proc/{pid}/task/{tid}/comm").TrimEnd('\n'); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
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
