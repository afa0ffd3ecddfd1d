namespace Pyprobe.Bpf.Maps;

/// <summary>
/// Per-CPU maps hold one value per *possible* CPU (not online), so lookups need that count:
/// /sys/devices/system/cpu/possible, e.g. "0-1" or "0,2-3".
/// </summary>
public static class PossibleCpus
{
    private static readonly Lazy<int> CountLazy = new(() => Parse(File.ReadAllText("/sys/devices/system/cpu/possible")));

    public static int Count => CountLazy.Value;

    /// <summary>Highest CPU number in a CPU list, plus one.</summary>
    public static int Parse(string text) => CpuList.Parse(text).Max() + 1;
}
