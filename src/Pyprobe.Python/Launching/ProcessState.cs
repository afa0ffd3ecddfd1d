namespace Pyprobe.Python.Launching;

/// <summary>The state letter of /proc/PID/stat (R, S, T for stopped, Z…), read after the parenthesised command name.</summary>
internal static class ProcessState
{
    /// <summary>The letter, or null when the process is gone.</summary>
    public static char? Of(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var end = stat.LastIndexOf(')');
            return end >= 0 && end + 2 < stat.Length ? stat[end + 2] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
