namespace Pyprobe.Cli.Commands.Running;

/// <summary>How targets are named in notes and in the Attached line.</summary>
internal static class TargetText
{
    /// <summary>"Python 3.11.2 (/usr/bin/python3.11)", or the path alone when the version is unknown.</summary>
    public static string Describe(TraceTarget target) => target.Version is null ? target.DisplayPath : $"Python {target.Version} ({target.DisplayPath})";

    /// <summary>"/usr/bin/python3.11 (pid 4, 5); /usr/lib/libpython3.9.so (every process)".</summary>
    public static string Where(IEnumerable<TraceTarget> targets) =>
        string.Join("; ", targets.Select(t => t.AllProcesses ? $"{t.DisplayPath} (every process)" : $"{t.DisplayPath} (pid {string.Join(", ", t.Pids)})"));
}
