using System.Text;
using Pyprobe.Cli.Output;

namespace Pyprobe.Cli.Tests.Output;

/// <summary>
/// Output that is not flushed event by event (a calls or top table, a dump) grows the buffer past its first size:
/// every byte written before and after the growth must reach the file, in order.
/// </summary>
public class EventBufferTests
{
    [Fact]
    public void WritesPastTheFirstBufferSizeWithoutAFlushKeepEveryByte()
    {
        var expected = new StringBuilder();
        var actual = EventFormatterTests.Format(output =>
        {
            for (var i = 0; i < 200_000; i++)
            {
                var line = $"row {i} {new string((char)('a' + i % 26), i % 40)}";
                output.WriteAscii(line);
                output.WriteNumber((long)i * 7);
                output.Write("\n"u8);
                expected.Append(line).Append(i * 7).Append('\n');
            }
            output.Write(Encoding.ASCII.GetBytes(new string('x', 3 << 20))); // one write larger than the buffer has grown to
            expected.Append('x', 3 << 20);
        });
        Assert.True(actual.Length > 8 << 20);
        Assert.Equal(expected.ToString(), Encoding.ASCII.GetString(actual));
    }

    /// <summary>
    /// A few lines after a poll go out at once to standard output (a pipe's reader waits for them), but a file written
    /// behind keeps them until <see cref="EventBuffer.MaxDelay"/>: each hand-over wakes its writer thread, which a reader
    /// polling every millisecond did for every few lines (12.8 s of kernel time with 50 processes at real-time priority).
    /// </summary>
    [Fact]
    public void AFewLinesGoToAPipeAtOnceAndToAFileWithinTheMaxDelay()
    {
        var piped = new StringWriter();
        using (var output = EventBuffer.Open(null, piped))
        {
            output.WriteAscii("one line\n");
            output.AfterPoll(1);
            Assert.Equal(0, output.Pending);
            Assert.Equal("one line\n", piped.ToString());
        }

        var path = Path.GetTempFileName();
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var output = EventBuffer.Open(path, TextWriter.Null))
            {
                output.WriteAscii("one line\n");
                output.AfterPoll(1);
                if (clock.Elapsed < EventBuffer.MaxDelay) Assert.Equal(9, output.Pending);
                Thread.Sleep(EventBuffer.MaxDelay + TimeSpan.FromMilliseconds(20));
                output.AfterPoll(1);
                Assert.Equal(0, output.Pending);
            }
            Assert.Equal("one line\n", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
