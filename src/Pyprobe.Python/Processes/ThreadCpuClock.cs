using System.Runtime.InteropServices;

namespace Pyprobe.Python.Processes;

/// <summary>
/// The CPU time the calling thread has used: what a read of a process's memory costs the machine. A wall-clock
/// measure would also count the time the thread waited for a CPU, and on a loaded machine a read of a millisecond
/// can take fifty, which would hold the next read back for a second where it costs nothing more.
/// </summary>
public static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>The calling thread's CPU time so far (user and system).</summary>
    public static TimeSpan Now => ClockGetTime(ClockThreadCpuTime, out var time) == 0
        ? TimeSpan.FromTicks(time.Seconds * TimeSpan.TicksPerSecond + time.Nanoseconds / 100)
        : throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
}
