using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Pyprobe.Cli.Output;

/// <summary>
/// One line per event in the seed's bpftrace style:
/// <c>22:06:37 function__entry filename=/usr/lib/python3.10/asyncio/base_events.py, funcname=time, lineno=693</c>.
/// With several processes (or a non-main thread) a <c>[pid/tid]</c> or <c>[tid]</c> column follows the time.
/// Bytes that are not UTF-8 and control characters are shown as \xNN; a cut string ends in "...".
/// </summary>
internal sealed class TextEventFormatter(EventClock clock, TimeFormat timeFormat, bool manyProcesses)
{
    private readonly ProbePlans<Plan> _plans = new(probe => new Plan(probe));
    private readonly byte[] _clockText = new byte[8];
    private long _clockSecond = -1;

    /// <summary>What a probe's lines share, worked out once: its name and each shown argument's " name=" or ", name=".</summary>
    private sealed class Plan
    {
        public Plan(AttachedProbe probe)
        {
            Name = Encoding.ASCII.GetBytes(probe.Probe.Name);
            var fields = new List<Field>();
            var arguments = probe.Probe.Arguments;
            for (var i = 0; i < arguments.Count; i++)
            {
                if (arguments[i].Kind == ProbeArgumentKind.Pointer) continue; // an address means nothing to a reader
                fields.Add(new Field(i, arguments[i].Kind, Encoding.UTF8.GetBytes((fields.Count == 0 ? " " : ", ") + arguments[i].Name + "=")));
            }
            Fields = [.. fields];
        }

        public byte[] Name { get; }
        public Field[] Fields { get; }
    }

    private readonly record struct Field(int Argument, ProbeArgumentKind Kind, byte[] Prefix);

    public void Write(EventBuffer output, in ProbeEvent e)
    {
        var plan = _plans.For(e.Probe);
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
                output.WriteNumber(e.Pid);
                output.Write((byte)'/');
            }
            output.WriteNumber(e.Tid);
            output.Write("] "u8);
        }
        output.Write(plan.Name);
        foreach (var field in plan.Fields)
        {
            output.Write(field.Prefix);
            switch (field.Kind)
            {
                case ProbeArgumentKind.CString:
                    WriteText(output, e.StringBytes(field.Argument, out var truncated));
                    if (truncated) output.Write("..."u8);
                    break;
                case ProbeArgumentKind.Boolean:
                    output.Write(e.Value(field.Argument) != 0 ? "true"u8 : "false"u8);
                    break;
                default:
                    output.WriteNumber(e.Value(field.Argument));
                    break;
            }
        }
        output.Write((byte)'\n');
    }

    /// <summary>HH:MM:SS changes once a second: its bytes are kept and only the microseconds are formatted per event.</summary>
    private void WriteTime(EventBuffer output, long nanosecondOfDay)
    {
        var seconds = nanosecondOfDay / 1_000_000_000;
        if (seconds != _clockSecond)
        {
            Digits(_clockText, 0, seconds / 3600, 2);
            _clockText[2] = (byte)':';
            Digits(_clockText, 3, seconds / 60 % 60, 2);
            _clockText[5] = (byte)':';
            Digits(_clockText, 6, seconds % 60, 2);
            _clockSecond = seconds;
        }
        var span = output.GetSpan(15);
        _clockText.CopyTo(span);
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

    /// <summary>
    /// Copies valid UTF-8 as is; any invalid byte, and any ASCII control character (a newline in a
    /// file name would otherwise split one event into two lines), becomes \xNN so output stays one
    /// line of valid text per event.
    /// </summary>
    internal static void WriteText(EventBuffer output, ReadOnlySpan<byte> bytes)
    {
        // Most names are printable ASCII: one vectorised scan, then a copy.
        if (!bytes.ContainsAnyExcept(PrintableAscii))
        {
            output.Write(bytes);
            return;
        }
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

    private static readonly SearchValues<byte> PrintableAscii = SearchValues.Create(Enumerable.Range(0x20, 0x7f - 0x20).Select(b => (byte)b).ToArray());

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
