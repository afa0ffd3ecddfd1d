using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys.Attributes;

/// <summary>union bpf_attr for BPF_BTF_LOAD.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct BtfLoadAttr
{
    [FieldOffset(0)] public ulong Btf;
    [FieldOffset(8)] public ulong LogBuf;
    [FieldOffset(16)] public uint BtfSize;
    [FieldOffset(20)] public uint LogSize;
    [FieldOffset(24)] public uint LogLevel;
    [FieldOffset(28)] public uint LogTrueSize;
}
