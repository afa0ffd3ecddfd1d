namespace Pyprobe.Bpf.Maps;

/// <summary>enum bpf_map_type: the kinds pyprobe uses.</summary>
public enum MapType : uint
{
    Hash = 1,
    Array = 2,
    ProgramArray = 3,
    PerCpuHash = 5,
    PerCpuArray = 6,
    LruHash = 9,
    RingBuffer = 27,
}
