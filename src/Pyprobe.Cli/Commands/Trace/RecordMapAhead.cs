using Pyprobe.Python.Sessions;

namespace Pyprobe.Cli.Commands.Trace;

/// <summary>
/// The trace session's record map, started before the command line is parsed: the kernel zeroes every page of the 8 MiB
/// the CPUs' queues take (1.2–2 ms of kernel time), and beside a target that keeps the other CPU busy the thread making
/// them finished ~3 ms after the target was resolved when it started only once the options were read. The size is the
/// default's unless the command line names another; the map made ahead is used only where the options ask for that size
/// (<see cref="Take"/>), and is closed otherwise (<see cref="Discard"/>, when the command ends without taking it).
/// </summary>
internal static class RecordMapAhead
{
    private const uint AheadBytes = (uint)SharedOptions.DefaultRingBufferMb << 20;
    private static PreparedRecordMap? _ahead;

    /// <summary>Starts the map for a trace command line (<paramref name="words"/>: before any "--") of the default ring size.</summary>
    public static void StartFor(string[] words)
    {
        if (words.Length < 2 || words[0] != "trace" || words.Any(w => w.StartsWith("--ring-buffer-mb", StringComparison.Ordinal))) return;
        Interlocked.Exchange(ref _ahead, TraceSession.PrepareRecordMap(AheadBytes))?.Dispose();
    }

    /// <summary>Whether a map made ahead waits to be taken or closed.</summary>
    internal static bool Holds => Volatile.Read(ref _ahead) is not null;

    /// <summary>Closes the map made ahead if no session took it (a command line that failed before attaching).</summary>
    public static void Discard() => Interlocked.Exchange(ref _ahead, null)?.Dispose();

    /// <summary>The map made ahead if it has <paramref name="bytes"/>, else one started now; the caller disposes it.</summary>
    public static PreparedRecordMap Take(uint bytes)
    {
        var ahead = Interlocked.Exchange(ref _ahead, null);
        if (ahead is not null && bytes == AheadBytes) return ahead;
        ahead?.Dispose();
        return TraceSession.PrepareRecordMap(bytes);
    }
}
