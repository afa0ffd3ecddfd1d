namespace Pyprobe.Python.Metrics;

/// <summary>
/// Everything an exporter serves, read from the kernel side at one moment and never changed afterwards: scrapes
/// render it while the collector builds the next one, so a scrape cannot hold up the kernel side.
/// </summary>
/// <param name="Sequence">How many snapshots were taken before this one, plus one.</param>
/// <param name="CollectSeconds">How long reading the maps and rings into this snapshot took.</param>
/// <param name="EventsLost">Events the kernel counted as lost because a ring was full (gc, imports, audit).</param>
/// <param name="SamplesLost">Stack samples the sampler's ring could not take.</param>
/// <param name="BinariesAttached">Interpreter files the probe programs are attached to.</param>
/// <param name="SampleRate">CPU-clock samples per second per CPU; 0 when sampling is off.</param>
public sealed record FleetSnapshot(
    long Sequence,
    DateTimeOffset Taken,
    double CollectSeconds,
    IReadOnlyList<ProcessMetrics> Processes,
    ulong EventsLost,
    ulong SamplesLost,
    int BinariesAttached,
    int SampleRate)
{
    public static FleetSnapshot Empty { get; } = new(0, DateTimeOffset.UnixEpoch, 0, [], 0, 0, 0, 0);
}

/// <summary>One Python process and what was counted in it since pyprobe first saw it.</summary>
/// <param name="Functions">Per function (top N by time, the rest as one <see cref="FunctionCalls.OtherName"/> row); null when the process has no function probes.</param>
/// <param name="Gc">Per generation; null when the process has no gc probes.</param>
/// <param name="Imports">Modules loaded; null when the process has no import probe.</param>
/// <param name="Audit">Per audit event name (top N, the rest as one row); null when the process has no audit probe.</param>
/// <param name="AsyncioTasks">Pending asyncio tasks, read from the process's memory; null unless asked for (or unreadable).</param>
public sealed record ProcessMetrics(
    int Pid,
    string Version,
    string Command,
    IReadOnlyList<FunctionCalls>? Functions,
    IReadOnlyList<CpuSamples> Cpu,
    IReadOnlyList<GcGeneration>? Gc,
    ulong? Imports,
    IReadOnlyList<AuditCount>? Audit,
    int? AsyncioTasks = null);

/// <summary>Calls of one function; <paramref name="Durations"/> is null when none of its calls was timed.</summary>
public sealed record FunctionCalls(string Function, string File, int? Line, ulong Calls, DurationHistogram? Durations)
{
    /// <summary>The name of the row that sums every function outside the top N.</summary>
    public const string OtherName = "<other>";
}

/// <summary>Samples whose innermost Python frame was in this function.</summary>
public sealed record CpuSamples(string Function, string File, ulong Samples);

/// <summary>Collections of one generation and how long they paused the process.</summary>
public sealed record GcGeneration(int Generation, ulong Collections, DurationHistogram Pauses);

/// <summary>How often one audit event was raised.</summary>
public sealed record AuditCount(string Event, ulong Count);
