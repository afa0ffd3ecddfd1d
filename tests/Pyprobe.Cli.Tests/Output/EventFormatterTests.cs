using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Pyprobe.Cli.Output;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Tests.Output;

/// <summary>
/// The text and JSON formatters write into the buffer directly, with per-probe plans and fast paths for plain names;
/// their bytes must be exactly those of the straightforward formatting they replaced (kept here as the reference:
/// a Utf8JsonWriter with the default encoder for JSON, rune by rune escaping for text), for every kind of name.
/// </summary>
public class EventFormatterTests
{
    [Theory]
    [InlineData("Seconds", false)]
    [InlineData("Micros", true)]
    [InlineData("None", false)]
    public void TextIsByteIdenticalToTheReference(string timeFormat, bool manyProcesses)
    {
        var time = Enum.Parse<TimeFormat>(timeFormat);
        var clock = new EventClock(-3_600_000_000_123, 7_200_000_000_000);
        var records = Records(out var probes);
        var actual = Format(output =>
        {
            var formatter = new TextEventFormatter(clock, time, manyProcesses);
            foreach (var record in records) formatter.Write(output, Decode(record, probes));
        });
        var expected = new StringBuilder();
        foreach (var record in records) expected.Append(ReferenceText(Decode(record, probes), clock, time, manyProcesses));
        Assert.Equal(Encoding.UTF8.GetBytes(expected.ToString()), actual);
    }

    [Fact]
    public void JsonIsByteIdenticalToTheReference()
    {
        var records = Records(out var probes);
        var actual = Format(output =>
        {
            var formatter = new JsonEventFormatter();
            foreach (var record in records) formatter.Write(output, Decode(record, probes));
        });
        var expected = new MemoryStream();
        foreach (var record in records) ReferenceJson(expected, Decode(record, probes));
        Assert.Equal(expected.ToArray(), actual);
        foreach (var line in Encoding.UTF8.GetString(actual).Split('\n', StringSplitOptions.RemoveEmptyEntries)) JsonDocument.Parse(line).Dispose();
    }

    /// <summary>
    /// The JSON formatter keeps the text of the current second and of the last pid/tid pair: a timestamp in the first
    /// second after boot, on a second's boundary, with zeros after the second, the largest there is, seconds going
    /// back, and threads alternating, all give the reference's bytes.
    /// </summary>
    [Fact]
    public void JsonTimestampsAndThreadsMatchTheReferenceAcrossSeconds()
    {
        var entry = EventRecords.Probe(0, "function__entry");
        ulong[] stamps = [0, 7, 999_999_999, 1_000_000_000, 1_000_000_001, 5_000_000_007, 5_090_000_000, 4_999_999_999, 12_345_678_901_234_567_890, ulong.MaxValue, 1_000_000_000];
        var records = stamps.Select((ts, i) => EventRecords.Record(entry, ts, i % 3 == 0 ? 1 : 2_147_483_647, i % 2 == 0 ? 1 : 99, [0x7f0000001000, 0x7f0000002000, i], ["f.py"u8.ToArray(), "g"u8.ToArray()])).ToList();
        var actual = Format(output =>
        {
            var formatter = new JsonEventFormatter();
            foreach (var record in records) formatter.Write(output, Decode(record, [entry]));
        });
        var expected = new MemoryStream();
        foreach (var record in records) ReferenceJson(expected, Decode(record, [entry]));
        Assert.Equal(Encoding.UTF8.GetString(expected.ToArray()), Encoding.UTF8.GetString(actual));
    }

    internal static List<byte[]> Records(out AttachedProbe[] probes)
    {
        probes = [EventRecords.Probe(0, "function__entry"), EventRecords.Probe(1, "import__find__load__done"), EventRecords.Probe(2, "audit")];
        return EventRecords.Mixed(probes[0], probes[1], probes[2], 1_000_000_000_000);
    }

    internal static ProbeEvent Decode(byte[] record, AttachedProbe[] probes) =>
        new(record, probes[BitConverter.ToInt32(record, Usdt.CodeGen.UsdtEventLayout.ProbeIdOffset)]);

    internal static byte[] Format(Action<EventBuffer> write)
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var output = EventBuffer.Open(path, TextWriter.Null)) write(output);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string ReferenceText(in ProbeEvent e, EventClock clock, TimeFormat time, bool manyProcesses)
    {
        var line = new StringBuilder();
        if (time != TimeFormat.None)
        {
            var ns = clock.LocalNanosecondOfDay(e.Timestamp);
            var s = ns / 1_000_000_000;
            line.Append($"{s / 3600:00}:{s / 60 % 60:00}:{s % 60:00}");
            if (time == TimeFormat.Micros) line.Append($".{ns / 1000 % 1_000_000:000000}");
            line.Append(' ');
        }
        if (manyProcesses) line.Append($"[{e.Pid}/{e.Tid}] ");
        else if (e.Tid != e.Pid) line.Append($"[{e.Tid}] ");
        line.Append(e.Name);
        var first = true;
        var arguments = e.Probe.Probe.Arguments;
        for (var i = 0; i < arguments.Count; i++)
        {
            if (arguments[i].Kind == ProbeArgumentKind.Pointer) continue;
            line.Append(first ? " " : ", ").Append(arguments[i].Name).Append('=');
            first = false;
            switch (arguments[i].Kind)
            {
                case ProbeArgumentKind.CString:
                    var bytes = e.StringBytes(i);
                    while (!bytes.IsEmpty)
                    {
                        var status = Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
                        if (status == System.Buffers.OperationStatus.Done && !(rune.Value < 0x20 || rune.Value == 0x7f)) line.Append(rune.ToString());
                        else for (var k = 0; k < consumed; k++) line.Append($"\\x{bytes[k]:x2}");
                        bytes = bytes[consumed..];
                    }
                    if (e.IsTruncated(i)) line.Append("...");
                    break;
                case ProbeArgumentKind.Boolean:
                    line.Append(e.Value(i) != 0 ? "true" : "false");
                    break;
                default:
                    line.Append(e.Value(i));
                    break;
            }
        }
        return line.Append('\n').ToString();
    }

    private static void ReferenceJson(MemoryStream output, in ProbeEvent e)
    {
        using (var json = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("ts", e.Timestamp);
            json.WriteNumber("pid", e.Pid);
            json.WriteNumber("tid", e.Tid);
            json.WriteString("probe", e.Name);
            var arguments = e.Probe.Probe.Arguments;
            for (var i = 0; i < arguments.Count; i++)
            {
                var name = arguments[i].Name;
                switch (arguments[i].Kind)
                {
                    case ProbeArgumentKind.CString:
                        var bytes = e.StringBytes(i);
                        if (Utf8.IsValid(bytes)) json.WriteString(name, bytes);
                        else
                        {
                            var text = new StringBuilder();
                            while (!bytes.IsEmpty)
                            {
                                var status = Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
                                if (status == System.Buffers.OperationStatus.Done) text.Append(rune.ToString());
                                else for (var k = 0; k < consumed; k++) text.Append($"\\x{bytes[k]:x2}");
                                bytes = bytes[consumed..];
                            }
                            json.WriteString(name, text.ToString());
                        }
                        if (e.IsTruncated(i)) json.WriteBoolean(name + "_truncated", true);
                        break;
                    case ProbeArgumentKind.Boolean:
                        json.WriteBoolean(name, e.Value(i) != 0);
                        break;
                    case ProbeArgumentKind.Pointer:
                        break;
                    default:
                        json.WriteNumber(name, e.Value(i));
                        break;
                }
            }
            json.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
    }
}
