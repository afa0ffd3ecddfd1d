using System.Globalization;

namespace Pyprobe.Bpf.Maps;

/// <summary>
/// The kernel's CPU list format ("0-1", "0,2-3"), as in /sys/devices/system/cpu/online. Per-CPU perf events are
/// opened on online CPUs (an offline one refuses with ENODEV); per-CPU maps are sized by possible CPUs.
/// </summary>
public static class CpuList
{
    public const string OnlinePath = "/sys/devices/system/cpu/online";

    /// <summary>The CPUs online now.</summary>
    public static IReadOnlyList<int> Online => Parse(File.ReadAllText(OnlinePath));

    public static IReadOnlyList<int> Parse(string text)
    {
        var cpus = new List<int>();
        foreach (var part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var dash = part.IndexOf('-');
            var first = int.Parse(dash < 0 ? part : part[..dash], CultureInfo.InvariantCulture);
            var last = dash < 0 ? first : int.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture);
            for (var cpu = first; cpu <= last; cpu++) cpus.Add(cpu);
        }
        if (cpus.Count == 0) throw new FormatException($"cannot parse CPU list '{text.Trim()}'");
        return cpus;
    }
}
