namespace Pyprobe.Bpf.Programs;

/// <summary>enum bpf_prog_type: uprobes and USDT run as kprobe programs.</summary>
public enum ProgramType : uint
{
    Kprobe = 2,
    PerfEvent = 7,
}

/// <summary>enum bpf_attach_type: the ones a uprobe loader needs.</summary>
public enum AttachType : uint
{
    None = 0,
    PerfEvent = 41,
    TraceUprobeMulti = 48,
}
