using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Metrics;

/// <summary>What the exporter watches and how.</summary>
/// <param name="Scope">Processes (-p), every CPython on the machine, or those of one interpreter file (--all PATH).</param>
/// <param name="TopFunctions">Series with their own function label per process and metric; the rest are summed into one.</param>
/// <param name="Refresh">How often the kernel side is read into a new snapshot.</param>
/// <param name="SampleRate">CPU-clock samples per second per CPU for pyprobe_cpu_samples_total.</param>
/// <param name="TimeCalls">Time function calls (entry and return, durations); false counts them alone, one probe a call
/// and no clock (<see cref="Analysis.CallStatsOptions.Timed"/>), and no duration series are exported.</param>
/// <param name="AsyncioTasks">Count each process's pending asyncio tasks at every refresh, read from its memory (<see cref="Asyncio.AsyncTaskReader.CountPending"/>).</param>
public sealed record FleetOptions(SampleScope Scope, int TopFunctions = 50, TimeSpan? Refresh = null, int SampleRate = 19, bool TimeCalls = true, bool AsyncioTasks = false)
{
    public TimeSpan RefreshInterval => Refresh ?? TimeSpan.FromSeconds(1);
}
