using System.Text.Json;
using System.Text.Unicode;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Output;

/// <summary>
/// One JSON object per line: <c>{"ts":…,"pid":…,"tid":…,"probe":"…", fields…}</c> with ts in
/// nanoseconds of CLOCK_MONOTONIC, the probe's decoded fields by name (found as a boolean), and
/// <c>"NAME_truncated":true</c> for a string that was cut. Bytes that are not UTF-8 become \xNN.
/// </summary>
internal sealed class JsonEventFormatter
{
    private readonly JsonLines _lines = new(new JsonWriterOptions { SkipValidation = true });
    private readonly Dictionary<string, JsonEncodedText> _names = new(StringComparer.Ordinal);

    public void Write(EventBuffer output, in ProbeEvent e)
    {
        var json = _lines.Begin(output);
        json.WriteNumber(Name("ts"), e.Timestamp);
        json.WriteNumber(Name("pid"), e.Pid);
        json.WriteNumber(Name("tid"), e.Tid);
        json.WriteString(Name("probe"), Name(e.Name));
        var arguments = e.Probe.Probe.Arguments;
        for (var i = 0; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            var name = Name(argument.Name);
            switch (argument.Kind)
            {
                case ProbeArgumentKind.CString:
                    var bytes = e.StringBytes(i);
                    if (Utf8.IsValid(bytes)) json.WriteString(name, bytes);
                    else json.WriteString(name, Escaped(bytes));
                    if (e.IsTruncated(i)) json.WriteBoolean(Name(argument.Name + "_truncated"), true);
                    break;
                case ProbeArgumentKind.Boolean:
                    json.WriteBoolean(name, e.Value(i) != 0);
                    break;
                case ProbeArgumentKind.Pointer:
                    break; // an address in the target means nothing outside it
                default:
                    json.WriteNumber(name, e.Value(i));
                    break;
            }
        }
        _lines.End(output);
    }

    private JsonEncodedText Name(string name)
    {
        if (!_names.TryGetValue(name, out var encoded)) _names[name] = encoded = JsonEncodedText.Encode(name);
        return encoded;
    }

    private static string Escaped(ReadOnlySpan<byte> bytes)
    {
        var builder = new System.Text.StringBuilder(bytes.Length + 16);
        while (!bytes.IsEmpty)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
            if (status == System.Buffers.OperationStatus.Done) builder.Append(rune.ToString());
            else for (var k = 0; k < consumed; k++) builder.Append("\\x").Append(bytes[k].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            bytes = bytes[consumed..];
        }
        return builder.ToString();
    }
}
