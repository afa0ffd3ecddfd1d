using System.Globalization;
using System.Text;

namespace Pyprobe.Usdt.Demangle;

/// <summary>
/// Rust's legacy symbol names (rustc's mangling before v0, what PyO3 extension modules carry): an Itanium-shaped
/// nested name whose last part is a hash, <c>h</c> and 16 hex digits, and whose parts escape what Itanium names cannot
/// hold (<c>$LT$</c> for &lt;, <c>..</c> for ::). Written as rustfilt and <c>c++filt</c> write them, without the hash,
/// which tells builds apart and not functions.
/// </summary>
public static class RustLegacyDemangler
{
    /// <summary><paramref name="symbol"/> as a Rust path (<c>pyo3::gil::GILGuard::acquire</c>), or null when it is not one.</summary>
    public static string? Demangle(string symbol)
    {
        if (!symbol.StartsWith("_ZN", StringComparison.Ordinal)) return null;
        var parts = new List<string>();
        var position = 3;
        while (position < symbol.Length && symbol[position] != 'E')
        {
            var start = position;
            while (position < symbol.Length && char.IsAsciiDigit(symbol[position])) position++;
            if (position == start || position - start > 5) return null;
            var length = int.Parse(symbol.AsSpan(start, position - start), NumberStyles.None, CultureInfo.InvariantCulture);
            if (length == 0 || position + length > symbol.Length) return null;
            parts.Add(symbol.Substring(position, length));
            position += length;
        }
        // After the name only a compiler's suffix (".llvm.1234"), which says nothing of the function.
        if (position >= symbol.Length || (position + 1 < symbol.Length && symbol[position + 1] != '.')) return null;
        if (parts.Count < 2 || !IsHash(parts[^1])) return null;
        var path = new StringBuilder();
        for (var i = 0; i < parts.Count - 1; i++)
        {
            if (i > 0) path.Append("::");
            if (!Unescape(parts[i], path)) return null;
        }
        return path.ToString();
    }

    // h and 16 lower-case hex digits; as binutils, at least 5 different digits, so a C++ name that merely ends in a
    // part like h0000000000000000 stays C++.
    private static bool IsHash(string part)
    {
        if (part.Length != 17 || part[0] != 'h') return false;
        var seen = 0;
        foreach (var c in part.AsSpan(1))
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return false;
            seen |= 1 << (c <= '9' ? c - '0' : c - 'a' + 10);
        }
        return int.PopCount(seen) >= 5;
    }

    private static bool Unescape(string part, StringBuilder path)
    {
        var text = part.AsSpan();
        if (text.StartsWith("_$")) text = text[1..];
        while (!text.IsEmpty)
        {
            if (text[0] == '.')
            {
                var pair = text.Length > 1 && text[1] == '.';
                path.Append(pair ? "::" : ".");
                text = text[(pair ? 2 : 1)..];
            }
            else if (text[0] == '$')
            {
                var end = text[1..].IndexOf('$');
                if (end < 0 || Escape(text.Slice(1, end)) is not { } unescaped) return false;
                path.Append(unescaped);
                text = text[(end + 2)..];
            }
            else
            {
                var run = text.IndexOfAny('$', '.');
                if (run < 0) run = text.Length;
                foreach (var c in text[..run])
                    if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
                path.Append(text[..run]);
                text = text[run..];
            }
        }
        return true;
    }

    private static string? Escape(ReadOnlySpan<char> code) => code switch
    {
        "SP" => "@",
        "BP" => "*",
        "RF" => "&",
        "LT" => "<",
        "GT" => ">",
        "LP" => "(",
        "RP" => ")",
        "C" => ",",
        _ when code.Length > 1 && code[0] == 'u'
            && uint.TryParse(code[1..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            && value is >= 0x20 and < 0x7f => ((char)value).ToString(),
        _ => null,
    };
}
