using Pyprobe.Python.Processes;

namespace Pyprobe.Cli.Output.Timeline;

/// <summary>
/// Names for a timeline's processes and threads, asked once each the first time one of their events is written:
/// a process by its command line, a thread by its kernel name (<c>/proc/PID/task/TID/comm</c>, which Python's
/// threads share with the process unless the program set one). One that has already exited gets a plain name.
/// </summary>
internal sealed class ThreadNames(Func<int, string?> processName, Func<int, int, string?> threadName)
{
    private readonly HashSet<int> _processes = [];
    private readonly HashSet<(int, int)> _threads = [];

    /// <summary>Names from /proc.</summary>
    public static ThreadNames FromProc() => new(ProcessName, ThreadName);

    /// <summary>Writes the metadata events of a process and thread not seen before.</summary>
    public void Introduce(TraceEventWriter events, int pid, int tid)
    {
        if (_threads.Contains((pid, tid))) return;
        if (_processes.Add(pid)) events.Metadata(pid, pid, "process_name", processName(pid) is { Length: > 0 } p ? p : "python");
        _threads.Add((pid, tid));
        var name = threadName(pid, tid) is { Length: > 0 } t ? t : "thread";
        events.Metadata(pid, tid, "thread_name", tid == pid ? $"{name} (main thread)" : name);
    }

    /// <summary>The command line with paths cut to their file names; a long one keeps its end, where the script usually is.</summary>
    private static string? ProcessName(int pid)
    {
        var words = ProcessCommandLine.Of(pid).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var command = string.Join(' ', words.Select(w => w.Contains('/') && !w.EndsWith('/') ? w[(w.LastIndexOf('/') + 1)..] : w));
        return command.Length > 100 ? "..." + command[^97..] : command;
    }

    private static string? ThreadName(int pid, int tid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/task/{tid}/comm").TrimEnd('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
