namespace Pyprobe.Cli.Output;

/// <summary>
/// Durations for people: three significant digits in the unit that fits (ns, µs, ms, s), the unit always
/// printed next to the number (bcc's pythonflow printed seconds under a "TIME(us)" header; this never does).
/// </summary>
internal static class CallsDuration
{
    public static string Format(double nanoseconds)
    {
        if (double.IsNaN(nanoseconds) || nanoseconds < 0) return "-";
        if (nanoseconds < 999.5) return string.Create(CultureInfo.InvariantCulture, $"{Math.Round(nanoseconds):0} ns");
        ReadOnlySpan<(double Scale, string Unit)> units = [(1e3, "µs"), (1e6, "ms"), (1e9, "s")];
        for (var i = 0; i < units.Length; i++)
        {
            var value = nanoseconds / units[i].Scale;
            // Past 999.5 the next unit reads better ("1.00 ms", not "1000 µs"), except for seconds.
            if (value >= 999.5 && i < units.Length - 1) continue;
            var text = value switch
            {
                < 9.995 => value.ToString("0.00", CultureInfo.InvariantCulture),
                < 99.95 => value.ToString("0.0", CultureInfo.InvariantCulture),
                _ => value.ToString("0", CultureInfo.InvariantCulture),
            };
            return $"{text} {units[i].Unit}";
        }
        return "-";
    }

    public static string Format(ulong? nanoseconds) => nanoseconds is { } ns ? Format((double)ns) : "-";

    public static string Format(double? nanoseconds) => nanoseconds is { } ns ? Format(ns) : "-";
}
