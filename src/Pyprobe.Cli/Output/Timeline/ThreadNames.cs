using Pyprobe.Python.Processes;
using Pyprobe.Python.Threads;

namespace Pyprobe.Cli.Output.Timeline;

/// <summary>
/// Names for a timeline's processes and threads, asked once each the first time one of their events is written:
/// a process by its command line, a thread by the name its Python gave it (<c>threading.Thread.name</c>, read from
/// the process's memory) or else its kernel name (<c>/proc/PID/task/TID/comm</c>, which up to 3.13 is the
/// executable's for every thread). One that has already exited gets a plain name.
/// </summary>
internal sealed class ThreadNames(Func<int, string?> processName, Func<int, int, string?> threadName, IDisposable? resources = null) : IDisposable
{
    private readonly HashSet<int> _processes = [];
    private readonly HashSet<(int, int)> _threads = [];

    /// <summary>Names from /proc and the processes' memory.</summary>
    public static ThreadNames FromProcesses()
    {
        var threads = new HostThreadNames(attachOnDemand: true);
        return new(ProcessName, threads.Name, threads);
    }

    /// <summary>Writes the metadata events of a process and thread not seen before.</summary>
    public void Introduce(TraceEventWriter events, int pid, int tid)
    {
        if (_threads.Contains((pid, tid))) return;
        if (_processes.Add(pid)) events.Metadata(pid, pid, "process_name", processName(pid) is { Length: > 0 } p ? p : "python");
        _threads.Add((pid, tid));
        var name = threadName(pid, tid) is { Length: > 0 } t ? t : "thread";
        events.Metadata(pid, tid, "thread_name", tid == pid && name != "MainThread" ? $"{name} (main thread)" : name);
    }

    public void Dispose() => resources?.Dispose();

    /// <summary>The command line with paths cut to their file names; a long one keeps its end, where the script usually is.</summary>
    private static string? ProcessName(int pid)
    {
        var words = ProcessCommandLine.Of(pid).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var command = string.Join(' ', words.Select(w => w.Contains('/') && !w.EndsWith('/') ? w[(w.LastIndexOf('/') + 1)..] : w));
        return command.Length > 100 ? "..." + command[^97..] : command;
    }

}
