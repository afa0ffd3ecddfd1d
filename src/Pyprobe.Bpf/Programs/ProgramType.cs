namespace Pyprobe.Bpf.Programs;

/// <summary>enum bpf_prog_type: uprobes and USDT run as kprobe programs; timer samples as perf-event programs; scheduler events as raw tracepoints.</summary>
public enum ProgramType : uint
{
    Kprobe = 2,

    /// <summary>Runs on a perf event's overflow (e.g. each CPU-clock sample); ctx is struct bpf_perf_event_data.</summary>
    PerfEvent = 7,

    /// <summary>Runs on a kernel tracepoint with its raw arguments; ctx is <c>u64 args[]</c> (e.g. sched_switch: preempt, prev, next, prev_state).</summary>
    RawTracepoint = 17,
}

/// <summary>enum bpf_attach_type: the ones a uprobe loader needs.</summary>
public enum AttachType : uint
{
    None = 0,
    PerfEvent = 41,
    TraceUprobeMulti = 48,
}
