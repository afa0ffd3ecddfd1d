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
}
