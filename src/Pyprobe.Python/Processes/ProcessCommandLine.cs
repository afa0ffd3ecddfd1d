namespace Pyprobe.Python.Processes;

/// <summary>A process's command line as `ps` shows it, for rows and labels.</summary>
public static class ProcessCommandLine
{
    /// <summary>/proc/PID/cmdline with its NUL separators as spaces; empty when the process is gone or unreadable.</summary>
    public static string Of(int pid)
    {
        try
        {
            var bytes = File.ReadAllBytes($"/proc/{pid}/cmdline");
            return System.Text.Encoding.UTF8.GetString(bytes).TrimEnd('\0').Replace('\0', ' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
