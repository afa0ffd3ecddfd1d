namespace Pyprobe.Usdt;

/// <summary>What the kernel shows of a process's threads in <c>/proc/PID/task</c>: their ids, each one's scheduling state and name.</summary>
public static class TaskState
{
    /// <summary>The ids of the process's threads (as this machine's /proc knows them); none when the process is gone.</summary>
    public static List<int> Ids(int pid)
    {
        try
        {
            return Directory.GetDirectories($"/proc/{pid}/task").Select(d => int.TryParse(Path.GetFileName(d), out var t) ? t : 0).Where(t => t > 0).ToList();
        }
        catch (DirectoryNotFoundException) { return []; }
    }

    /// <summary>R (running or runnable), S (sleeping), D (waiting for I/O), T, Z, …; null when the thread is gone.</summary>
    public static char? Of(int pid, int tid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/task/{tid}/stat");
            var end = stat.LastIndexOf(')'); // the name in parentheses may hold anything, even ')'
            return end >= 0 && end + 2 < stat.Length ? stat[end + 2] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Asleep: S (sleeping) or D (waiting for I/O).</summary>
    public static bool IsAsleep(int pid, int tid) => Of(pid, tid) is 'S' or 'D';

    /// <summary>The kernel's name of the thread (<c>comm</c>: 15 bytes at most), or null when the thread is gone.</summary>
    public static string? Name(int pid, int tid)
    {
        try { return File.ReadAllText($"/proc/{pid}/task/{tid}/comm").TrimEnd('\n'); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
