namespace Pyprobe.Bpf.Programs;

/// <summary>enum bpf_prog_type: uprobes and USDT run as kprobe programs; timer samples as perf-event programs.</summary>
public enum ProgramType : uint
{
    Kprobe = 2,

    /// <summary>Runs on a perf event's overflow (e.g. each CPU-clock sample); ctx is struct bpf_perf_event_data.</summary>
    PerfEvent = 7,
}

/// <summary>enum bpf_attach_type: the ones a uprobe loader needs.</summary>
public enum AttachType : uint
{
    None = 0,
    PerfEvent = 41,
    TraceUprobeMulti = 48,
}
