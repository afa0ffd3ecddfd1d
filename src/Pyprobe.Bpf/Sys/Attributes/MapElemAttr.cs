using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys.Attributes;

/// <summary>union bpf_attr for BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM and BPF_MAP_GET_NEXT_KEY.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct MapElemAttr
{
    [FieldOffset(0)] public uint MapFd;
    [FieldOffset(8)] public ulong Key;
    /// <summary>value, or next_key for GET_NEXT_KEY.</summary>
    [FieldOffset(16)] public ulong ValueOrNextKey;
    [FieldOffset(24)] public ulong Flags;
}
