using System.Globalization;
using System.Numerics;
using System.Text;

namespace Pyprobe.Python.Objects;

/// <summary>
/// A short, Python-like text of a value read from a process, for <c>dump --locals</c>: None, bools, ints, floats, strs
/// and bytes as <c>repr()</c> would write them (long ones cut with "..."), containers by type and size
/// (<c>&lt;list of 3&gt;</c>), anything else by type and address (<c>&lt;Order object at 0x7f…&gt;</c>). Nothing is
/// called in the target: a value is what its memory says.
/// </summary>
public sealed class ValueRepr(IMemoryReader memory, CPythonFacts facts, StrLayout str)
{
    private readonly ObjectReader _objects = new(memory, facts, str);
    private const int MaxChars = 80;
    private const int MaxIntDigits = 40; // 30-bit digits: ints up to 1200 bits are written out

    public ValueRepr(CPythonProcess process) : this(process.Memory, process.Binary.Facts, process.Layout.Str) { }

    /// <summary>The text of the object at <paramref name="address"/>; a read the process refuses throws <see cref="ProcessMemoryException"/>.</summary>
    public string Of(ulong address)
    {
        var type = _objects.TypeName(address);
        switch (type)
        {
            case "NoneType": return "None";
            case "bool": return _objects.Int(address, MaxIntDigits) is { IsZero: false } ? "True" : "False";
            case "int": return _objects.Int(address, MaxIntDigits)?.ToString(CultureInfo.InvariantCulture) ?? $"<int at 0x{address:x}>";
            case "float": return Float(BitConverter.Int64BitsToDouble((long)memory.ReadU64(address + PyObjectLayout.FloatValue)));
            case "str": return Str(address) ?? $"<str at 0x{address:x}>";
            case "bytes": return Bytes(address);
            case "tuple" or "list" or "set" or "frozenset" or "dict":
                long size = (long)memory.ReadU64(address + (ulong)(type == "set" || type == "frozenset" ? SetUsed : PyObjectLayout.VarSize));
                return $"<{type} of {size}>";
            default:
                return $"<{type} object at 0x{address:x}>";
        }
    }

    // PySetObject: fill, then used (the number of elements), after the object header.
    private const int SetUsed = 24;

    /// <summary>
    /// repr() of a float: the shortest digits that read back as the same double, written plainly when the decimal exponent
    /// is from −4 to 15 (with ".0" when integral) and as d.ddde±XX otherwise, as CPython's float_repr does.
    /// </summary>
    public static string Float(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        // .NET's round-trip form gives the same shortest digits; only its layout differs.
        var text = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        var sign = value < 0 || (value == 0 && double.IsNegative(value)) ? "-" : "";
        int e = text.IndexOfAny(['E', 'e']);
        var mantissa = e < 0 ? text : text[..e];
        int exponent = e < 0 ? 0 : int.Parse(text[(e + 1)..], CultureInfo.InvariantCulture);
        int dot = mantissa.IndexOf('.');
        var digits = mantissa.Replace(".", "", StringComparison.Ordinal);
        int point = (dot < 0 ? mantissa.Length : dot) + exponent; // digits before the decimal point
        int lead = digits.Length - digits.TrimStart('0').Length;
        digits = digits.TrimStart('0');
        point -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) return sign + "0.0";
        int decimalExponent = point - 1;
        if (decimalExponent is < -4 or >= 16)
        {
            var rest = digits.Length > 1 ? "." + digits[1..] : "";
            return $"{sign}{digits[0]}{rest}e{(decimalExponent < 0 ? '-' : '+')}{Math.Abs(decimalExponent):00}";
        }
        if (point <= 0) return $"{sign}0.{new string('0', -point)}{digits}";
        if (point >= digits.Length) return $"{sign}{digits}{new string('0', point - digits.Length)}.0";
        return $"{sign}{digits[..point]}.{digits[point..]}";
    }

    private string? Str(ulong address)
    {
        long length = (long)memory.ReadU64(address + (ulong)str.Length);
        var text = ObjectReader.ReadStr(memory, str, address, maxLength: int.MaxValue, maxRead: MaxChars);
        if (text is null) return null;
        var quoted = Quoted("", text, text.Select(c => (int)c), isBytes: false);
        return length > text.Length ? quoted + "..." : quoted;
    }

    private string Bytes(ulong address)
    {
        long length = (long)memory.ReadU64(address + PyObjectLayout.VarSize);
        if (length < 0) return $"<bytes at 0x{address:x}>";
        var data = memory.ReadBytes(address + PyObjectLayout.BytesData, (int)Math.Min(length, MaxChars));
        var quoted = Quoted("b", Encoding.Latin1.GetString(data), data.Select(b => (int)b), isBytes: true);
        return length > data.Length ? quoted + "..." : quoted;
    }

    /// <summary>repr()'s quoting: single quotes unless the text has one and no double quote; escapes for the rest.</summary>
    private static string Quoted(string prefix, string text, IEnumerable<int> units, bool isBytes)
    {
        char quote = text.Contains('\'') && !text.Contains('"') ? '"' : '\'';
        var result = new StringBuilder(prefix).Append(quote);
        foreach (var u in units)
            result.Append(u switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when u == quote => "\\" + quote,
                < 0x20 or (>= 0x7f and < 0xa0) => $"\\x{u:x2}",
                >= 0x80 when isBytes => $"\\x{u:x2}",
                _ => ((char)u).ToString(), // a str's UTF-16 units: a surrogate pair is appended half by half
            });
        return result.Append(quote).ToString();
    }
}
