namespace Pyprobe.Bpf.Maps;

/// <summary>
/// Per-CPU maps hold one value per *possible* CPU (not online), so lookups need that count:
/// /sys/devices/system/cpu/possible, e.g. "0-1" or "0,2-3".
/// </summary>
public static class PossibleCpus
{
    private static readonly Lazy<int> CountLazy = new(() => Parse(File.ReadAllText("/sys/devices/system/cpu/possible")));

    public static int Count => CountLazy.Value;

    public static int Parse(string text)
    {
        var highest = -1;
        foreach (var part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var dash = part.IndexOf('-');
            var last = int.Parse(dash < 0 ? part : part[(dash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            highest = Math.Max(highest, last);
        }
        if (highest < 0) throw new FormatException($"cannot parse possible CPUs '{text.Trim()}'");
        return highest + 1;
    }
}
