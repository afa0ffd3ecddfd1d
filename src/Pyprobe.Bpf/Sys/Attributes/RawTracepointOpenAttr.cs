using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys.Attributes;

/// <summary>union bpf_attr for BPF_RAW_TRACEPOINT_OPEN (name, prog_fd, cookie).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct RawTracepointOpenAttr
{
    /// <summary>Pointer to the NUL-terminated tracepoint name ("sched_switch").</summary>
    [FieldOffset(0)] public ulong Name;
    [FieldOffset(8)] public uint ProgFd;
    [FieldOffset(16)] public ulong Cookie;
}
