using System.Globalization;
using System.Text.RegularExpressions;

namespace Pyprobe.Serve.Tests.Support;

/// <summary>Fetches /metrics and finds samples in it (by the sample line's exact name and label text).</summary>
internal static partial class MetricsText
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public static string Get(string url) => Http.GetStringAsync(url).GetAwaiter().GetResult();

    /// <summary>The value of the sample <paramref name="name"/> whose labels include every one of <paramref name="labels"/> (name="value"), or null.</summary>
    public static double? Value(string text, string name, params string[] labels)
    {
        foreach (var line in text.Split('\n'))
        {
            var m = Sample().Match(line);
            if (!m.Success || m.Groups[1].Value != name) continue;
            var labelText = m.Groups[2].Value;
            if (labels.All(l => labelText.Contains(l, StringComparison.Ordinal))) return double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        return null;
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")]
    private static partial Regex Sample();
}
