using System.Diagnostics;

namespace Pyprobe.Bpf.Launch;

/// <summary>
/// Where a launch's time goes, for the start-up benchmark and for anyone asking why pyprobe took as long as it did to
/// attach. With <c>PYPROBE_LAUNCH_PHASES=FILE</c> set, the end of each phase is kept (its CLOCK_MONOTONIC time in ns,
/// the clock <see cref="Stopwatch"/> reads here, and the bytes the marking thread had allocated) and appended to FILE at
/// exit, one "ns bytes phase" line each and "--" after the last; the caller knows when it launched pyprobe. Unset, a
/// mark is one test of a static field.
/// </summary>
public static class LaunchPhases
{
    public const string Variable = "PYPROBE_LAUNCH_PHASES";
    private static readonly string? OutputPath = Environment.GetEnvironmentVariable(Variable);
    private static readonly (long At, long Allocated, string Phase)[] Marks = new (long, long, string)[64];
    private static int _count;

    /// <summary>Records that <paramref name="phase"/> ended now (the phases in order: each begins where the last ended).</summary>
    public static void Mark(string phase)
    {
        if (OutputPath is null) return;
        var index = Interlocked.Increment(ref _count) - 1;
        if (index < Marks.Length) Marks[index] = (Stopwatch.GetTimestamp(), GC.GetAllocatedBytesForCurrentThread(), phase);
    }

    /// <summary>Appends the marks to the file named by <see cref="Variable"/>, if any; a file that cannot be written is skipped.</summary>
    public static void Write()
    {
        if (OutputPath is null) return;
        try
        {
            using var file = new StreamWriter(OutputPath, append: true);
            var nanosecondsPerTick = 1e9 / Stopwatch.Frequency;
            for (var i = 0; i < Math.Min(_count, Marks.Length); i++)
                file.WriteLine($"{(long)(Marks[i].At * nanosecondsPerTick)} {Marks[i].Allocated} {Marks[i].Phase}");
            file.WriteLine("--");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A diagnostic: never the reason a run fails.
        }
    }
}
