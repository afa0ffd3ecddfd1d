using System.Buffers;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Pyprobe.Cli.Output;

/// <summary>
/// One JSON object per line: <c>{"ts":…,"pid":…,"tid":…,"probe":"…", fields…}</c> with ts in
/// nanoseconds of CLOCK_MONOTONIC, the probe's decoded fields by name (found as a boolean), and
/// <c>"NAME_truncated":true</c> for a string that was cut. Bytes that are not UTF-8 become \xNN.
/// The bytes are exactly what System.Text.Json's <see cref="Utf8JsonWriter"/> writes with its default encoder
/// (its escaping: non-ASCII as \uXXXX, and " \ &amp; ' + &lt; &gt; ` as \u00XX); they are written straight
/// into the buffer, with the names and the constant parts of each probe's lines encoded once.
/// </summary>
internal sealed class JsonEventFormatter
{
    /// <summary>The ASCII bytes the default encoder leaves as they are; a string of only these is copied.</summary>
    private static readonly SearchValues<byte> Unescaped = SearchValues.Create(Enumerable.Range(0, 0x80)
        .Where(b => JsonEncodedText.Encode([(byte)b]).EncodedUtf8Bytes is [var only] && only == b).Select(b => (byte)b).ToArray());

    private readonly ProbePlans<Plan> _plans = new(probe => new Plan(probe));

    private sealed class Plan
    {
        public Plan(AttachedProbe probe)
        {
            Probe = Encoding.UTF8.GetBytes($",\"probe\":\"{Encoded(probe.Probe.Name)}\"");
            var fields = new List<Field>();
            var arguments = probe.Probe.Arguments;
            for (var i = 0; i < arguments.Count; i++)
            {
                if (arguments[i].Kind == ProbeArgumentKind.Pointer) continue; // an address in the target means nothing outside it
                fields.Add(new Field(i, arguments[i].Kind, Encoding.UTF8.GetBytes($",\"{Encoded(arguments[i].Name)}\":"),
                    Encoding.UTF8.GetBytes($",\"{Encoded(arguments[i].Name + "_truncated")}\":true")));
            }
            Fields = [.. fields];
        }

        public byte[] Probe { get; }
        public Field[] Fields { get; }

        private static string Encoded(string name) => Encoding.UTF8.GetString(JsonEncodedText.Encode(name).EncodedUtf8Bytes);
    }

    private readonly record struct Field(int Argument, ProbeArgumentKind Kind, byte[] Name, byte[] Truncated);

    public void Write(EventBuffer output, in ProbeEvent e)
    {
        var plan = _plans.For(e.Probe);
        output.Write("{\"ts\":"u8);
        WriteTimestamp(output, e.Timestamp);
        WriteOrigin(output, e.Pid, e.Tid);
        output.Write(plan.Probe);
        foreach (var field in plan.Fields)
        {
            output.Write(field.Name);
            switch (field.Kind)
            {
                case ProbeArgumentKind.CString:
                    String(output, e.StringBytes(field.Argument, out var truncated));
                    if (truncated) output.Write(field.Truncated);
                    break;
                case ProbeArgumentKind.Boolean:
                    output.Write(e.Value(field.Argument) != 0 ? "true"u8 : "false"u8);
                    break;
                default:
                    output.WriteNumber(e.Value(field.Argument));
                    break;
            }
        }
        output.Write("}\n"u8);
    }

    // Events come in runs of one thread and one second: the decimal text of both is kept, and a timestamp is the
    // second's digits and nine more (the same bytes as formatting the whole number: its second is never 0 after boot).
    private ulong _second = ulong.MaxValue;
    private readonly byte[] _secondText = new byte[20];
    private int _secondLength;
    private int _originPid = -1, _originTid = -1;
    private readonly byte[] _originText = new byte[",\"pid\":-2147483648,\"tid\":-2147483648".Length];
    private int _originLength;

    private void WriteTimestamp(EventBuffer output, ulong ns)
    {
        var second = ns / 1_000_000_000;
        if (second == 0)
        {
            output.WriteNumber(ns);
            return;
        }
        if (second != _second)
        {
            Utf8Formatter.TryFormat(second, _secondText, out _secondLength);
            _second = second;
        }
        var span = output.GetSpan(_secondLength + 9);
        _secondText.AsSpan(0, _secondLength).CopyTo(span);
        NineDigits(span.Slice(_secondLength, 9), (uint)(ns - second * 1_000_000_000));
        output.Advance(_secondLength + 9);
    }

    private static void NineDigits(Span<byte> span, uint value)
    {
        ref var pairs = ref MemoryMarshal.GetReference(DigitPairs);
        for (var k = 7; k > 0; k -= 2)
        {
            var (rest, pair) = Math.DivRem(value, 100);
            span[k] = Unsafe.Add(ref pairs, (int)pair * 2);
            span[k + 1] = Unsafe.Add(ref pairs, (int)pair * 2 + 1);
            value = rest;
        }
        span[0] = (byte)('0' + value);
    }

    private static ReadOnlySpan<byte> DigitPairs =>
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"u8;

    private void WriteOrigin(EventBuffer output, int pid, int tid)
    {
        if (pid != _originPid || tid != _originTid)
        {
            var text = _originText.AsSpan();
            ",\"pid\":"u8.CopyTo(text);
            var length = 7;
            Utf8Formatter.TryFormat(pid, text[length..], out var written);
            length += written;
            ",\"tid\":"u8.CopyTo(text[length..]);
            length += 7;
            Utf8Formatter.TryFormat(tid, text[length..], out written);
            _originLength = length + written;
            _originPid = pid;
            _originTid = tid;
        }
        output.Write(_originText.AsSpan(0, _originLength));
    }

    /// <summary>A string value: copied when nothing in it needs escaping, else encoded as the writer would.</summary>
    private static void String(EventBuffer output, ReadOnlySpan<byte> bytes)
    {
        output.Write((byte)'"');
        if (IsPlain(bytes)) output.Write(bytes);
        else if (Utf8.IsValid(bytes)) output.Write(JsonEncodedText.Encode(bytes).EncodedUtf8Bytes);
        else output.Write(JsonEncodedText.Encode(Escaped(bytes)).EncodedUtf8Bytes);
        output.Write((byte)'"');
    }

    /// <summary>
    /// Whether every byte is one the encoder leaves as it is. Names are short: a table lookup per byte beats setting
    /// up the vectorised search below 32 bytes (measured with pyprobe convert: the search was 8% of a JSON line).
    /// </summary>
    private static bool IsPlain(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= 32) return !bytes.ContainsAnyExcept(Unescaped);
        ref var table = ref MemoryMarshal.GetArrayDataReference(PlainTable);
        foreach (var b in bytes)
            if (Unsafe.Add(ref table, b) == 0) return false;
        return true;
    }

    private static readonly byte[] PlainTable = Enumerable.Range(0, 256).Select(b => (byte)(b < 0x80 && Unescaped.Contains((byte)b) ? 1 : 0)).ToArray();

    private static string Escaped(ReadOnlySpan<byte> bytes)
    {
        var builder = new StringBuilder(bytes.Length + 16);
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
            if (status == OperationStatus.Done) builder.Append(rune.ToString());
            else for (var k = 0; k < consumed; k++) builder.Append("\\x").Append(bytes[k].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            bytes = bytes[consumed..];
        }
        return builder.ToString();
    }
}
