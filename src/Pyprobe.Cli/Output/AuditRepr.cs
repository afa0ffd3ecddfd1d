using System.Text;
using System.Text.Json;
using Pyprobe.Python.Audit;

namespace Pyprobe.Cli.Output;

/// <summary>
/// Audit arguments for people and programs: a Python-like repr for text ("..." marks what was left out) and
/// <c>{"type",…}</c> objects for JSON.
/// </summary>
internal static class AuditRepr
{
    /// <summary>Python-like repr of a decoded value.</summary>
    public static void Repr(StringBuilder s, AuditValue v)
    {
        switch (v.Kind)
        {
            case AuditValueKind.None: s.Append("None"); break;
            case AuditValueKind.Bool: s.Append(v.Value != 0 ? "True" : "False"); break;
            case AuditValueKind.Int: s.Append(v.Value.ToString(CultureInfo.InvariantCulture)); break;
            case AuditValueKind.BigInt: s.Append("<int of ").Append(Math.Abs(v.Value)).Append(" digits>"); break;
            case AuditValueKind.Float: s.Append(Float(v).ToString("R", CultureInfo.InvariantCulture)); break;
            case AuditValueKind.Str when v.Text is { } text:
                Quote(s, text, bytes: false);
                if (v.Truncated) s.Append("...");
                break;
            case AuditValueKind.Str or AuditValueKind.StrUndecodable: s.Append("<str of ").Append(v.Value).Append(" chars, not decoded>"); break;
            case AuditValueKind.Bytes:
                s.Append('b');
                Quote(s, Encoding.Latin1.GetString(v.Data), bytes: true);
                if (v.Truncated) s.Append("...");
                break;
            case AuditValueKind.Tuple or AuditValueKind.List:
                var tuple = v.Kind == AuditValueKind.Tuple;
                s.Append(tuple ? '(' : '[');
                var items = v.Items ?? [];
                for (var i = 0; i < items.Count; i++)
                {
                    if (i > 0) s.Append(", ");
                    Repr(s, items[i]);
                }
                if (v.Value > items.Count) s.Append(items.Count > 0 ? ", " : "").Append("...");
                else if (tuple && v.Value == 1) s.Append(',');
                s.Append(tuple ? ')' : ']');
                break;
            case AuditValueKind.Other: s.Append('<').Append(v.TypeName).Append(" object>"); break;
            case AuditValueKind.Unreadable: s.Append("<unreadable>"); break;
            default: s.Append('?'); break;
        }
    }

    private static double Float(AuditValue v) => BitConverter.Int64BitsToDouble(v.Value);

    private static void Quote(StringBuilder s, string text, bool bytes)
    {
        var quote = text.Contains('\'') && !text.Contains('"') ? '"' : '\'';
        s.Append(quote);
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\': s.Append("\\\\"); break;
                case '\n': s.Append("\\n"); break;
                case '\r': s.Append("\\r"); break;
                case '\t': s.Append("\\t"); break;
                default:
                    if (c == quote) s.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f || (bytes && c > 0x7e)) s.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else s.Append(c);
                    break;
            }
        }
        s.Append(quote);
    }

    public static void WriteJson(Utf8JsonWriter j, AuditValue v)
    {
        j.WriteStartObject();
        switch (v.Kind)
        {
            case AuditValueKind.None: j.WriteString("type", "None"); break;
            case AuditValueKind.Bool: j.WriteString("type", "bool"); j.WriteBoolean("value", v.Value != 0); break;
            case AuditValueKind.Int: j.WriteString("type", "int"); j.WriteNumber("value", v.Value); break;
            case AuditValueKind.BigInt: j.WriteString("type", "int"); j.WriteNumber("digits", Math.Abs(v.Value)); j.WriteBoolean("negative", v.Value < 0); break;
            case AuditValueKind.Float:
                j.WriteString("type", "float");
                var d = Float(v);
                if (double.IsFinite(d)) j.WriteNumber("value", d);
                else j.WriteString("value", d.ToString(CultureInfo.InvariantCulture));
                break;
            case AuditValueKind.Str when v.Text is { } text:
                j.WriteString("type", "str");
                j.WriteString("value", text);
                j.WriteNumber("length", v.Value);
                break;
            case AuditValueKind.Str or AuditValueKind.StrUndecodable:
                j.WriteString("type", "str");
                j.WriteNumber("length", v.Value);
                j.WriteBoolean("decoded", false);
                break;
            case AuditValueKind.Bytes:
                j.WriteString("type", "bytes");
                j.WriteString("value", Encoding.Latin1.GetString(v.Data));
                j.WriteString("hex", Convert.ToHexStringLower(v.Data));
                j.WriteNumber("size", v.Value);
                break;
            case AuditValueKind.Tuple or AuditValueKind.List:
                j.WriteString("type", v.Kind == AuditValueKind.Tuple ? "tuple" : "list");
                j.WriteNumber("size", v.Value);
                j.WriteStartArray("items");
                foreach (var item in v.Items ?? []) WriteJson(j, item);
                j.WriteEndArray();
                break;
            case AuditValueKind.Other: j.WriteString("type", "object"); j.WriteString("type_name", v.TypeName); break;
            default: j.WriteString("type", "unreadable"); break;
        }
        if (v.Truncated) j.WriteBoolean("truncated", true);
        j.WriteEndObject();
    }
}
