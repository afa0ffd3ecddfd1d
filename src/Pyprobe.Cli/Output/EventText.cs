using System.Buffers;
using System.Text;
using System.Text.Json;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output;

/// <summary>Helpers the event-stream and stat writers share: durations, clock times, JSON lines.</summary>
internal static class EventText
{
    /// <summary>"850 ns", "12.3 us", "1.234 ms", "2.50 s".</summary>
    public static string Duration(ulong ns) => ns switch
    {
        < 1_000 => $"{ns} ns",
        < 1_000_000 => (ns / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " us",
        < 1_000_000_000 => (ns / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + " ms",
        _ => (ns / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " s",
    };

    /// <summary>HH:MM:SS of a monotonic timestamp.</summary>
    public static string Clock(EventClock clock, ulong monotonicNs)
    {
        var ns = clock.LocalNanosecondOfDay(monotonicNs);
        var seconds = ns / 1_000_000_000;
        return $"{seconds / 3600:00}:{seconds / 60 % 60:00}:{seconds % 60:00}";
    }

    private static readonly JsonWriterOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes one JSON object built by <paramref name="build"/> as one line.</summary>
    public static void JsonLine(EventBuffer output, Action<Utf8JsonWriter> build)
    {
        using (var json = new Utf8JsonWriter(output, Options))
        {
            json.WriteStartObject();
            build(json);
            json.WriteEndObject();
        }
        output.Write((byte)'\n');
    }
}
