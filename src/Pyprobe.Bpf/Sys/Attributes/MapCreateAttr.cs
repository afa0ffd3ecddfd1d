using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys.Attributes;

/// <summary>union bpf_attr for BPF_MAP_CREATE, up to map_extra (72 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
public unsafe struct MapCreateAttr
{
    [FieldOffset(0)] public uint MapType;
    [FieldOffset(4)] public uint KeySize;
    [FieldOffset(8)] public uint ValueSize;
    [FieldOffset(12)] public uint MaxEntries;
    [FieldOffset(16)] public uint MapFlags;
    [FieldOffset(20)] public uint InnerMapFd;
    [FieldOffset(24)] public uint NumaNode;
    [FieldOffset(28)] public fixed byte MapName[16];
    [FieldOffset(44)] public uint MapIfIndex;
    [FieldOffset(48)] public uint BtfFd;
    [FieldOffset(64)] public ulong MapExtra;
}
