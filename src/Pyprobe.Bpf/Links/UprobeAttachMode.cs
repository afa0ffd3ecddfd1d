using Pyprobe.Bpf.Programs;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// How uprobes are attached. uprobe_multi (6.6+) is one link for all sites and needs only
/// CAP_BPF+CAP_PERFMON; the perf-event path is one event per site and needs CAP_SYS_ADMIN on kernels
/// patched for CVE-2025-38466.
/// </summary>
public enum UprobeAttachMode
{
    UprobeMulti,
    PerfEvent,
}

public static class UprobeAttachModeExtensions
{
    /// <summary>The expected_attach_type a program must be loaded with to be attached this way.</summary>
    public static AttachType ExpectedAttachType(this UprobeAttachMode mode)
        => mode == UprobeAttachMode.UprobeMulti ? AttachType.TraceUprobeMulti : AttachType.None;
}
