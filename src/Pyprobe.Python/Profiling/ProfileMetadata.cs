namespace Pyprobe.Python.Profiling;

/// <summary>Which threads a sample may land on.</summary>
public enum ProfileMode : byte
{
    /// <summary>Threads running on a CPU (the default).</summary>
    Cpu,
    /// <summary><c>--idle</c>: every thread, also those sleeping, waiting or without the GIL.</summary>
    Wall,
}

/// <summary>What happened to the samples of a recording, as printed on stderr at the end.</summary>
/// <param name="Taken">Samples that landed in a target process.</param>
/// <param name="NoPythonFrame">Of those, samples of a thread that had no Python frame (not in any stack, but for <paramref name="CFramesOnly"/>).</param>
/// <param name="Truncated">Samples whose stack was deeper than the walk limit (kept, marked truncated).</param>
/// <param name="Lost">Samples dropped on the way (ring full, map full): not in any stack.</param>
/// <param name="OffCpu">Wall clock (<c>--idle</c>): of <paramref name="Taken"/>, the sample-equivalents of time threads spent off their CPU.</param>
/// <param name="WithoutGil"><c>--gil</c>: samples with a Python stack whose thread did not hold the GIL (not in any stack).</param>
/// <param name="CFramesOnly"><c>--native</c>: of <paramref name="NoPythonFrame"/>, the CPU samples in the profile by their C frames alone (a C library's own threads).</param>
/// <param name="TaskWaits">Wall clock with <c>--tasks</c>: of <paramref name="OffCpu"/>, the sample-equivalents of time asyncio tasks spent suspended in an await.</param>
public readonly record struct SampleTotals(long Taken, long NoPythonFrame, long Truncated, long Lost, long OffCpu = 0, long WithoutGil = 0, long CFramesOnly = 0, long TaskWaits = 0);

/// <summary>Everything about a recording that is not its stacks.</summary>
/// <param name="Pids">The processes sampled, ascending.</param>
/// <param name="PythonVersion">"3.12.1"; several joined by ", " for a mixed <c>--all</c>; "" when unknown.</param>
/// <param name="SampleRateHz">Samples per second per CPU that was asked for.</param>
/// <param name="StartTime">When sampling started (wall clock).</param>
/// <param name="Duration">How long it sampled.</param>
public sealed record ProfileMetadata(
    IReadOnlyList<int> Pids,
    string PythonVersion,
    int SampleRateHz,
    ProfileMode Mode,
    DateTimeOffset StartTime,
    TimeSpan Duration,
    SampleTotals Totals)
{
    /// <summary>The time one sample stands for: 1 s / rate, in nanoseconds.</summary>
    public long PeriodNanos => SampleRateHz > 0 ? 1_000_000_000L / SampleRateHz : 0;
}
