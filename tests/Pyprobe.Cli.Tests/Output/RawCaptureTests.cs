using Pyprobe.Cli.Output;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Cli.Output.Formats;
using Pyprobe.Cli.Output.Raw;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Tests.Output;

/// <summary>
/// A raw capture converted later gives exactly the bytes the live trace writes for the same records: both paths are fed
/// the same ring records (the odd names of <see cref="EventRecords"/>, framed as the kernel frames them, with a
/// discarded record among them), with the clock the capture recorded.
/// </summary>
public class RawCaptureTests
{
    private static readonly EventClock Clock = new(1_764_000_000_000_000_000 - 123_456_789_012, 3_600_000_000_000);

    [Theory]
    [InlineData("text", "Seconds", false)]
    [InlineData("text", "Micros", true)]
    [InlineData("text", "None", false)]
    [InlineData("json", "Seconds", true)]
    public void ConvertedCaptureIsByteIdenticalToTheDirectOutput(string format, string timeFormat, bool manyProcesses)
    {
        var time = Enum.Parse<TimeFormat>(timeFormat);
        var records = EventFormatterTests.Records(out var probes);
        var direct = EventFormatterTests.Format(output =>
        {
            var writer = EventStreamWriters.For(format == "json" ? OutputFormat.Json : OutputFormat.Text, new EventStreamContext(output, Clock, time, manyProcesses));
            foreach (var record in records) writer.Probe(EventFormatterTests.Decode(record, probes));
        });

        using var capture = new TempPath();
        using var converted = new TempPath();
        WriteCapture(capture.Path, new RawCaptureHeader(Clock.MonotonicToUnixNs, Clock.LocalOffsetNs, manyProcesses, time, "test", probes), records);
        var stderr = new StringWriter();
        var code = CliApp.Run(["convert", capture.Path, "--format", format, "-o", converted.Path], TextWriter.Null, stderr);

        Assert.True(code == 0, stderr.ToString());
        Assert.Equal(records.Count, File.ReadAllLines(converted.Path).Length);
        Assert.Equal(direct, File.ReadAllBytes(converted.Path));
    }

    [Fact]
    public void TimeFormatCanBeChangedWhenConverting()
    {
        var records = EventFormatterTests.Records(out var probes);
        using var capture = new TempPath();
        using var converted = new TempPath();
        WriteCapture(capture.Path, new RawCaptureHeader(Clock.MonotonicToUnixNs, Clock.LocalOffsetNs, false, TimeFormat.Seconds, "test", probes), records);
        Assert.Equal(0, CliApp.Run(["convert", capture.Path, "--time", "none", "-o", converted.Path], TextWriter.Null, TextWriter.Null));
        var first = File.ReadLines(converted.Path).First();
        Assert.StartsWith("function__entry filename=/usr/lib/python3.9/asyncio/base_events.py, funcname=/usr/lib/python3.9/asyncio/base_events.py, lineno=-5", first);
    }

    [Fact]
    public void ACutCaptureConvertsItsWholeRecordsAndFails()
    {
        var records = EventFormatterTests.Records(out var probes);
        using var capture = new TempPath();
        using var converted = new TempPath();
        WriteCapture(capture.Path, new RawCaptureHeader(Clock.MonotonicToUnixNs, Clock.LocalOffsetNs, false, TimeFormat.None, "test", probes), records);
        using (var file = new FileStream(capture.Path, FileMode.Open)) file.SetLength(file.Length - 5);
        var stderr = new StringWriter();
        Assert.Equal(1, CliApp.Run(["convert", capture.Path, "-o", converted.Path], TextWriter.Null, stderr));
        Assert.Contains($"ends inside a record", stderr.ToString());
        Assert.Contains($"{records.Count - 1} events were converted", stderr.ToString());
        Assert.Equal(records.Count - 1, File.ReadAllLines(converted.Path).Length);
    }

    [Fact]
    public void NotACaptureIsAOneLineError()
    {
        using var capture = new TempPath();
        File.WriteAllText(capture.Path, "function__entry filename=x.py\n");
        var stderr = new StringWriter();
        Assert.Equal(1, CliApp.Run(["convert", capture.Path], TextWriter.Null, stderr));
        Assert.Equal($"pyprobe: {capture.Path} is not a pyprobe raw capture (made by trace --format raw)", stderr.ToString().Trim());
    }

    /// <summary>The header, then each record framed as the ring frames it: u32 length, u32, payload, padding to 8.</summary>
    private static void WriteCapture(string path, RawCaptureHeader header, List<byte[]> records)
    {
        using var file = new FileStream(path, FileMode.Create);
        file.Write(header.Encode());
        var discarded = true;
        foreach (var record in records)
        {
            if (discarded)
            {
                // A record the producer discarded: the reader skips it, as it does in the ring.
                Frame(file, new byte[40], 1u << 30);
                discarded = false;
            }
            Frame(file, record, 0);
        }
    }

    private static void Frame(Stream file, byte[] record, uint bits)
    {
        file.Write(BitConverter.GetBytes((uint)record.Length | bits));
        file.Write(BitConverter.GetBytes(0u));
        file.Write(record);
        file.Write(new byte[(8 - record.Length % 8) % 8]);
    }

    private sealed class TempPath : IDisposable
    {
        public string Path { get; } = System.IO.Path.GetTempFileName();
        public void Dispose() => File.Delete(Path);
    }
}
