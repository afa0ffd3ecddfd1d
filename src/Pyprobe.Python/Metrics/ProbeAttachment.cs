using Pyprobe.Python.Analysis;

namespace Pyprobe.Python.Metrics;

/// <summary>
/// The probe programs the exporter keeps on one interpreter target: an event ring for gc, imports and audit (rare
/// events, paired and counted in user space) and the kernel's call statistics where function probes fire. Never
/// the 3.11 entry gate: an exporter runs for days and must not slow the fleet, so 3.11 calls are counted untimed.
/// </summary>
internal sealed class ProbeAttachment : IDisposable
{
    private static readonly string[] EventProbes = ["gc__start", "gc__done", "import__find__load__start", "audit"];

    private ProbeAttachment(TraceTarget target, TraceSession? events, CallStatsSession? calls)
    {
        Target = target;
        Events = events;
        Calls = calls;
    }

    public TraceTarget Target { get; }
    public TraceSession? Events { get; }
    public CallStatsSession? Calls { get; }

    /// <summary>Which of the counted probes the target's interpreter has.</summary>
    public bool Has(string probe) => Target.Binary.FindProbe(PythonProbeCatalog.Provider, probe) is not null;

    /// <summary>Attaches what the target supports; null when it supports none of it. Calls are counted alone unless <paramref name="timeCalls"/>.</summary>
    public static ProbeAttachment? Attach(TraceTarget target, bool timeCalls)
    {
        TraceSession? events = null;
        CallStatsSession? calls = null;
        try
        {
            var probes = EventProbes.Where(p => target.Binary.FindProbe(PythonProbeCatalog.Provider, p) is not null)
                .Select(p => PythonProbeCatalog.Find(p)!).ToList();
            if (probes.Count > 0)
                events = TraceSession.Attach([target], probes, new TraceSessionOptions(RingBufferBytes: 1 << 20, EntryGate: false));
            if (FunctionProbesFire(target))
                calls = CallStatsSession.Attach([target], new CallStatsOptions(EntryGate: false, MaxThreads: 1024, Timed: timeCalls));
        }
        catch
        {
            events?.Dispose();
            calls?.Dispose();
            throw;
        }
        return events is null && calls is null ? null : new ProbeAttachment(target, events, calls);
    }

    private static bool FunctionProbesFire(TraceTarget target)
    {
        if (target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__return") is null) return false;
        return target.Version is not { } v || PythonProbeCatalog.Support("function__return", v.Major, v.Minor).Firing != ProbeFiring.No;
    }

    public void Dispose()
    {
        Events?.Dispose();
        Calls?.Dispose();
    }
}
