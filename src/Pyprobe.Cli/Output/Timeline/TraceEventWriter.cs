using System.Buffers.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Pyprobe.Cli.Output.Timeline;

/// <summary>
/// The Trace Event Format's JSON array form, written as it goes: <c>[</c>, one event object per line, <c>]</c>.
/// The array form (rather than <c>{"traceEvents":[…]}</c>) is the one the format lets end early: a file cut short
/// (pyprobe killed, disk full) still opens in Perfetto and chrome://tracing, which accept a missing <c>]</c>.
/// Timestamps and durations are microseconds with three decimals, so the events' nanoseconds survive exactly.
/// </summary>
internal sealed class TraceEventWriter
{
    private static readonly JsonWriterOptions Options = new() { SkipValidation = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonEncodedText Ph = JsonEncodedText.Encode("ph");
    private static readonly JsonEncodedText Pid = JsonEncodedText.Encode("pid");
    private static readonly JsonEncodedText Tid = JsonEncodedText.Encode("tid");
    private static readonly JsonEncodedText Ts = JsonEncodedText.Encode("ts");
    private static readonly JsonEncodedText Dur = JsonEncodedText.Encode("dur");
    private static readonly JsonEncodedText Name = JsonEncodedText.Encode("name");
    private static readonly JsonEncodedText Cat = JsonEncodedText.Encode("cat");
    private static readonly JsonEncodedText Scope = JsonEncodedText.Encode("s");

    private readonly EventBuffer _output;
    private readonly Utf8JsonWriter _json;
    private bool _first = true;

    public TraceEventWriter(EventBuffer output)
    {
        _output = output;
        _json = new Utf8JsonWriter(output, Options);
        output.Write("[\n"u8);
    }

    /// <summary>A complete event ("X"): a slice from <paramref name="startNs"/> lasting <paramref name="durationNs"/>. Args follow.</summary>
    public Utf8JsonWriter Slice(int pid, int tid, string name, string category, ulong startNs, ulong durationNs)
    {
        var json = Begin("X", pid, tid, name, category);
        Micros(json, Ts, startNs);
        Micros(json, Dur, durationNs);
        return json;
    }

    /// <summary>An instant event ("i") on its thread, or on the whole trace when <paramref name="global"/>. Args follow.</summary>
    public Utf8JsonWriter Instant(int pid, int tid, string name, string category, ulong atNs, bool global = false)
    {
        var json = Begin("i", pid, tid, name, category);
        Micros(json, Ts, atNs);
        json.WriteString(Scope, global ? "g" : "t");
        return json;
    }

    /// <summary>A metadata event ("M"), e.g. process_name or thread_name with args {"name": …}.</summary>
    public void Metadata(int pid, int tid, string name, string value)
    {
        var json = Begin("M", pid, tid, name, null);
        json.WriteStartObject("args");
        json.WriteString(Name, value);
        json.WriteEndObject();
        End();
    }

    /// <summary>Ends the event begun by <see cref="Slice"/> or <see cref="Instant"/>, after its args.</summary>
    public void End()
    {
        _json.WriteEndObject();
        _json.Flush();
    }

    /// <summary>Ends the array; nothing may follow.</summary>
    public void Close() => _output.Write("\n]\n"u8);

    private Utf8JsonWriter Begin(string phase, int pid, int tid, string name, string? category)
    {
        // The comma ends the line before, so every line but the last is "{…},": a cut file needs no repair.
        if (!_first) _output.Write(",\n"u8);
        _first = false;
        _json.Reset(_output);
        _json.WriteStartObject();
        _json.WriteString(Ph, phase);
        _json.WriteNumber(Pid, pid);
        _json.WriteNumber(Tid, tid);
        _json.WriteString(Name, name);
        if (category is not null) _json.WriteString(Cat, category);
        return _json;
    }

    /// <summary>Nanoseconds as microseconds with exactly three decimals ("1234.005"), never through a double.</summary>
    private static void Micros(Utf8JsonWriter json, JsonEncodedText property, ulong ns)
    {
        Span<byte> text = stackalloc byte[32];
        Utf8Formatter.TryFormat(ns / 1000, text, out var length);
        text[length++] = (byte)'.';
        Utf8Formatter.TryFormat(ns % 1000, text[length..], out var fraction, new System.Buffers.StandardFormat('D', 3));
        length += fraction;
        json.WritePropertyName(property);
        json.WriteRawValue(text[..length], skipInputValidation: true);
    }
}
