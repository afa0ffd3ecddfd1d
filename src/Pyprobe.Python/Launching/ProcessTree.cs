namespace Pyprobe.Python.Launching;

/// <summary>
/// Processes and their parents as /proc/PID/stat shows them: whether one is alive, when it started, and the
/// processes below one (a started command and everything it started in turn).
/// </summary>
public static class ProcessTree
{
    /// <summary>Every process id in /proc but <paramref name="except"/>.</summary>
    public static HashSet<int> AllPids(int except = 0)
    {
        var pids = new HashSet<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(directory), out var pid) && pid != except) pids.Add(pid);
        return pids;
    }

    /// <summary><paramref name="root"/> (when alive) and every process below it.</summary>
    public static HashSet<int> WithDescendants(int root, int except = 0)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var pid in AllPids(except))
        {
            if (ParentOf(pid) is int parent)
            {
                if (!children.TryGetValue(parent, out var list)) children[parent] = list = [];
                list.Add(pid);
            }
        }
        var found = new HashSet<int>();
        var pending = new Stack<int>();
        if (IsAlive(root)) pending.Push(root);
        while (pending.Count > 0)
        {
            var pid = pending.Pop();
            if (!found.Add(pid)) continue;
            if (children.TryGetValue(pid, out var list)) foreach (var child in list) pending.Push(child);
        }
        return found;
    }

    /// <summary>Running or sleeping: there, and neither a zombie nor dead.</summary>
    public static bool IsAlive(int pid) => StatField(pid, 3) is { } state && state is not ("Z" or "X");

    /// <summary>The state letter (R, S, T for stopped, Z…), or null when the process is gone.</summary>
    public static char? State(int pid) => StatField(pid, 3) is [var letter, ..] ? letter : null;

    /// <summary>
    /// Waits up to 2 s for <paramref name="pid"/> to show as stopped (a SIGSTOP sent from BPF takes effect on the
    /// process's way back to user space); false when it exited or did not stop in time.
    /// </summary>
    public static bool WaitUntilStopped(int pid)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.ElapsedMilliseconds < 2000)
        {
            switch (State(pid))
            {
                case 'T' or 't': return true;
                case null or 'Z' or 'X': return false;
            }
            Thread.Yield();
        }
        return false;
    }

    /// <summary>The start time in clock ticks since boot: with the pid, it names one process even if the pid is reused.</summary>
    public static string? StartTime(int pid) => StatField(pid, 22);

    /// <summary>Time since the process started (its start time in /proc/PID/stat against /proc/uptime); null when gone.</summary>
    public static TimeSpan? Age(int pid)
    {
        const double TicksPerSecond = 100; // USER_HZ, the unit of /proc/PID/stat times on Linux
        if (!long.TryParse(StartTime(pid), out var ticks)) return null;
        string uptime;
        try { uptime = File.ReadAllText("/proc/uptime"); }
        catch (IOException) { return null; }
        if (!double.TryParse(uptime.Split(' ')[0], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var since)) return null;
        return TimeSpan.FromSeconds(Math.Max(0, since - ticks / TicksPerSecond));
    }

    public static int? ParentOf(int pid) => int.TryParse(StatField(pid, 4), out var parent) ? parent : null;

    /// <summary>Field <paramref name="number"/> (1-based, as in proc(5)) of /proc/PID/stat; null when gone.</summary>
    public static string? StatField(int pid, int number)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        var end = stat.LastIndexOf(')');
        if (end < 0) return null;
        var fields = stat[(end + 2)..].Split(' ');
        var index = number - 3; // fields after "pid (comm)" start at number 3
        return index >= 0 && index < fields.Length ? fields[index] : null;
    }
}
