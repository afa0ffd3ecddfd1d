using System.Buffers.Text;
using System.Text.Unicode;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Output;

/// <summary>
/// One line per event in the seed's bpftrace style:
/// <c>22:06:37 function__entry filename=/usr/lib/python3.10/asyncio/base_events.py, funcname=time, lineno=693</c>.
/// With several processes (or a non-main thread) a <c>[pid/tid]</c> or <c>[tid]</c> column follows the time.
/// Bytes that are not UTF-8 and control characters are shown as \xNN; a cut string ends in "...".
/// </summary>
internal sealed class TextEventFormatter(EventClock clock, TimeFormat timeFormat, bool manyProcesses)
{
    public void Write(EventBuffer output, in ProbeEvent e)
    {
        if (timeFormat != TimeFormat.None)
        {
            WriteTime(output, clock.LocalNanosecondOfDay(e.Timestamp));
            output.Write((byte)' ');
        }
        if (manyProcesses || e.Tid != e.Pid)
        {
            output.Write((byte)'[');
            if (manyProcesses)
            {
                WriteInt(output, e.Pid);
                output.Write((byte)'/');
            }
            WriteInt(output, e.Tid);
            output.WriteAscii("] ");
        }
        output.WriteAscii(e.Name);
        var arguments = e.Probe.Probe.Arguments;
        var first = true;
        for (var i = 0; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            if (argument.Kind == ProbeArgumentKind.Pointer) continue; // an address means nothing to a reader
            output.WriteAscii(first ? " " : ", ");
            first = false;
            output.WriteAscii(argument.Name);
            output.Write((byte)'=');
            switch (argument.Kind)
            {
                case ProbeArgumentKind.CString:
                    WriteText(output, e.StringBytes(i));
                    if (e.IsTruncated(i)) output.WriteAscii("...");
                    break;
                case ProbeArgumentKind.Boolean:
                    output.WriteAscii(e.Value(i) != 0 ? "true" : "false");
                    break;
                default:
                    WriteLong(output, e.Value(i));
                    break;
            }
        }
        output.Write((byte)'\n');
    }

    private void WriteTime(EventBuffer output, long nanosecondOfDay)
    {
        var seconds = nanosecondOfDay / 1_000_000_000;
        var span = output.GetSpan(15);
        Digits(span, 0, seconds / 3600, 2);
        span[2] = (byte)':';
        Digits(span, 3, seconds / 60 % 60, 2);
        span[5] = (byte)':';
        Digits(span, 6, seconds % 60, 2);
        if (timeFormat != TimeFormat.Micros)
        {
            output.Advance(8);
            return;
        }
        span[8] = (byte)'.';
        Digits(span, 9, nanosecondOfDay / 1000 % 1_000_000, 6);
        output.Advance(15);
    }

    private static void Digits(Span<byte> span, int at, long value, int width)
    {
        for (var k = width - 1; k >= 0; k--)
        {
            span[at + k] = (byte)('0' + value % 10);
            value /= 10;
        }
    }

    internal static void WriteInt(EventBuffer output, int value)
    {
        Utf8Formatter.TryFormat(value, output.GetSpan(11), out var written);
        output.Advance(written);
    }

    internal static void WriteLong(EventBuffer output, long value)
    {
        Utf8Formatter.TryFormat(value, output.GetSpan(20), out var written);
        output.Advance(written);
    }

    /// <summary>
    /// Copies valid UTF-8 as is; any invalid byte, and any ASCII control character (a newline in a
    /// file name would otherwise split one event into two lines), becomes \xNN so output stays one
    /// line of valid text per event.
    /// </summary>
    internal static void WriteText(EventBuffer output, ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes) && bytes.IndexOfAnyInRange((byte)0, (byte)0x1f) < 0 && bytes.IndexOf((byte)0x7f) < 0)
        {
            output.Write(bytes);
            return;
        }
        while (!bytes.IsEmpty)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
            if (status == System.Buffers.OperationStatus.Done && !(rune.Value < 0x20 || rune.Value == 0x7f))
            {
                output.Write(bytes[..consumed]);
            }
            else
            {
                for (var k = 0; k < consumed; k++) WriteEscapedByte(output, bytes[k]);
            }
            bytes = bytes[consumed..];
        }
    }

    private static void WriteEscapedByte(EventBuffer output, byte b)
    {
        const string hex = "0123456789abcdef";
        var span = output.GetSpan(4);
        span[0] = (byte)'\\';
        span[1] = (byte)'x';
        span[2] = (byte)hex[b >> 4];
        span[3] = (byte)hex[b & 15];
        output.Advance(4);
    }
}
