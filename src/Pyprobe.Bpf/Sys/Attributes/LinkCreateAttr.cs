using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys.Attributes;

/// <summary>union bpf_attr for BPF_LINK_CREATE with the uprobe_multi variant (64 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct LinkCreateUprobeMultiAttr
{
    [FieldOffset(0)] public uint ProgFd;
    [FieldOffset(4)] public uint TargetFd;
    [FieldOffset(8)] public uint AttachType;
    [FieldOffset(12)] public uint Flags;
    [FieldOffset(16)] public ulong Path;
    [FieldOffset(24)] public ulong Offsets;
    [FieldOffset(32)] public ulong RefCtrOffsets;
    [FieldOffset(40)] public ulong Cookies;
    [FieldOffset(48)] public uint Count;
    /// <summary>uprobe_multi.flags (BPF_F_UPROBE_MULTI_RETURN), not link_create.flags.</summary>
    [FieldOffset(52)] public uint UprobeMultiFlags;
    [FieldOffset(56)] public uint Pid;
}

/// <summary>union bpf_attr for BPF_LINK_CREATE with the perf_event variant (24 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct LinkCreatePerfEventAttr
{
    [FieldOffset(0)] public uint ProgFd;
    [FieldOffset(4)] public uint TargetFd;
    [FieldOffset(8)] public uint AttachType;
    [FieldOffset(12)] public uint Flags;
    [FieldOffset(16)] public ulong BpfCookie;
}
