using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys.Attributes;

/// <summary>
/// struct perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1 = 72 bytes): all a uprobe PMU event or a
/// software sampling event needs.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
public struct PerfEventAttr
{
    public const uint SizeVer1 = 72;

    /// <summary>PERF_TYPE_SOFTWARE and its PERF_COUNT_SW_CPU_CLOCK counter (an hrtimer per CPU).</summary>
    public const uint TypeSoftware = 1;
    public const ulong SoftwareCpuClock = 0;

    /// <summary>Bit of <see cref="Flags"/>: <see cref="SamplePeriod"/> holds sample_freq (Hz) instead of a period.</summary>
    public const ulong FlagFrequency = 1UL << 10;

    [FieldOffset(0)] public uint Type;
    [FieldOffset(4)] public uint Size;
    /// <summary>Bit 0: retprobe. Bits 32..63: ref_ctr_offset (the USDT semaphore).</summary>
    [FieldOffset(8)] public ulong Config;
    /// <summary>sample_period, or sample_freq when <see cref="FlagFrequency"/> is set.</summary>
    [FieldOffset(16)] public ulong SamplePeriod;
    [FieldOffset(24)] public ulong SampleType;
    [FieldOffset(32)] public ulong ReadFormat;
    [FieldOffset(40)] public ulong Flags;
    [FieldOffset(48)] public uint WakeupEvents;
    [FieldOffset(52)] public uint BpType;
    /// <summary>uprobe_path: pointer to the NUL-terminated path.</summary>
    [FieldOffset(56)] public ulong Config1;
    /// <summary>probe_offset: the file offset.</summary>
    [FieldOffset(64)] public ulong Config2;
}
