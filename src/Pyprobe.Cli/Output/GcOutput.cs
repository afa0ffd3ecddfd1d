using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Output;

/// <summary>Helpers the gc, imports, audit and stat writers share: durations, clock times, JSON lines.</summary>
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
    public static void JsonLine(TextWriter output, Action<Utf8JsonWriter> build)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            build(json);
            json.WriteEndObject();
        }
        output.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
        output.Write('\n');
    }
}

/// <summary>Pauses in power-of-two microsecond buckets, printed like bcc's histograms.</summary>
internal sealed class PauseHistogram
{
    private readonly long[] _buckets = new long[64];
    public long Count { get; private set; }

    public void Add(ulong ns)
    {
        var us = ns / 1000;
        var bucket = us == 0 ? 0 : 64 - System.Numerics.BitOperations.LeadingZeroCount(us);
        _buckets[bucket]++;
        Count++;
    }

    /// <summary>(low, high, count) per bucket from the first to the last non-empty one, in microseconds.</summary>
    public IEnumerable<(ulong Low, ulong High, long Count)> Buckets()
    {
        var first = Array.FindIndex(_buckets, c => c > 0);
        var last = Array.FindLastIndex(_buckets, c => c > 0);
        if (first < 0) yield break;
        for (var b = first; b <= last; b++)
            yield return (b == 0 ? 0 : 1UL << (b - 1), b == 0 ? 0 : (1UL << b) - 1, _buckets[b]);
    }

    public void WriteText(TextWriter output, string title)
    {
        output.WriteLine(title);
        var rows = Buckets().ToList();
        if (rows.Count == 0)
        {
            output.WriteLine("  (none)");
            return;
        }
        var max = rows.Max(r => r.Count);
        output.WriteLine($"  {"us",21} : count    distribution");
        foreach (var (low, high, count) in rows)
        {
            var stars = (int)Math.Round(40.0 * count / max);
            output.WriteLine($"  {low,10} -> {high,-7} : {count,-8} |{new string('*', stars),-40}|");
        }
    }

    public void WriteJson(Utf8JsonWriter json, string name)
    {
        json.WriteStartArray(name);
        foreach (var (low, high, count) in Buckets())
        {
            json.WriteStartObject();
            json.WriteNumber("low_us", low);
            json.WriteNumber("high_us", high);
            json.WriteNumber("count", count);
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }
}

/// <summary>
/// pyprobe gc output. Text: a row per collection (time, [pid,] generation, pause, collected), then a
/// per-generation summary and a pause histogram. JSON: one object per collection
/// <c>{"ts","pid","tid","generation","duration_ns","collected"}</c>, then one <c>{"summary":"gc",…}</c> line.
/// </summary>
internal sealed class GcWriter(TextWriter output, bool json, bool showPid, EventClock clock)
{
    private readonly SortedDictionary<int, (long Count, ulong Total, ulong Max, long Collected)> _generations = [];
    private readonly PauseHistogram _histogram = new();
    private bool _header;

    public long Rows { get; private set; }

    public void Write(in GcCollection c)
    {
        Rows++;
        var g = _generations.GetValueOrDefault(c.Generation);
        _generations[c.Generation] = (g.Count + 1, g.Total + c.DurationNs, Math.Max(g.Max, c.DurationNs), g.Collected + c.Collected);
        _histogram.Add(c.DurationNs);
        if (json)
        {
            var e = c;
            EventText.JsonLine(output, j =>
            {
                j.WriteNumber("ts", e.Timestamp);
                j.WriteNumber("pid", e.Pid);
                j.WriteNumber("tid", e.Tid);
                j.WriteNumber("generation", e.Generation);
                j.WriteNumber("duration_ns", e.DurationNs);
                j.WriteNumber("collected", e.Collected);
            });
            return;
        }
        if (!_header)
        {
            output.WriteLine(showPid ? "TIME        PID/TID     GEN         PAUSE  COLLECTED" : "TIME      GEN         PAUSE  COLLECTED");
            _header = true;
        }
        var time = EventText.Clock(clock, c.Timestamp);
        output.WriteLine(showPid
            ? $"{time}  {$"{c.Pid}/{c.Tid}",-10} {c.Generation,4} {EventText.Duration(c.DurationNs),13} {c.Collected,10}"
            : $"{time}  {c.Generation,3} {EventText.Duration(c.DurationNs),13} {c.Collected,10}");
    }

    public void WriteSummary()
    {
        if (json)
        {
            EventText.JsonLine(output, j =>
            {
                j.WriteString("summary", "gc");
                j.WriteNumber("collections", Rows);
                j.WriteStartArray("generations");
                foreach (var (gen, s) in _generations)
                {
                    j.WriteStartObject();
                    j.WriteNumber("generation", gen);
                    j.WriteNumber("count", s.Count);
                    j.WriteNumber("total_ns", s.Total);
                    j.WriteNumber("max_ns", s.Max);
                    j.WriteNumber("collected", s.Collected);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                _histogram.WriteJson(j, "pause_histogram");
            });
            return;
        }
        output.WriteLine();
        output.WriteLine($"{Rows} collections");
        output.WriteLine("GEN  COUNT          TOTAL            MAX  COLLECTED");
        foreach (var (gen, s) in _generations)
            output.WriteLine($"{gen,3} {s.Count,6} {EventText.Duration(s.Total),14} {EventText.Duration(s.Max),14} {s.Collected,10}");
        output.WriteLine();
        _histogram.WriteText(output, "gc pauses:");
    }
}
