namespace Pyprobe.Usdt.Demangle;

/// <summary>
/// Turns the mangled C++ names of native frames (<c>_ZNK3foo3barEv</c>) into what <c>c++filt</c> prints
/// (<c>foo::bar() const</c>), or with <see cref="WithoutParameters"/> what <c>c++filt -p</c> prints (<c>foo::bar</c>): a frame
/// names the function, not the overload. A name it cannot read is left as it is (null).
/// </summary>
public static class CxxDemangler
{
    // Longer symbols exist only in generated code; past this they are shown mangled rather than parsed.
    private const int MaxLength = 16 * 1024;

    /// <summary><paramref name="symbol"/> demangled in full, or null when it is not a C++ name pyprobe can read.</summary>
    public static string? Demangle(string symbol) => Demangle(symbol, withParameters: true);

    /// <summary><paramref name="symbol"/> without parameter types, return type or clone suffixes, or null.</summary>
    public static string? WithoutParameters(string symbol) => Demangle(symbol, withParameters: false);

    private static string? Demangle(string symbol, bool withParameters)
    {
        if (symbol.Length < 3 || symbol.Length > MaxLength || !symbol.StartsWith("_Z", StringComparison.Ordinal)) return null;
        var dot = symbol.IndexOf('.');
        var mangled = dot < 0 ? symbol : symbol[..dot];
        var clones = dot < 0 ? [] : CloneSuffixes(symbol[dot..]);
        if (clones is null) return null;
        CxxNode node;
        try
        {
            node = ItaniumParser.Parse(mangled);
        }
        catch (FormatException)
        {
            return null;
        }
        catch (OverflowException)
        {
            return null;
        }
        var output = new CxxWriter();
        if (!withParameters && node is EncodingNode function) function.WriteName(output);
        else node.Write(output);
        if (withParameters)
            foreach (var clone in clones) output.Add(" [clone ").Add(clone).Add(']');
        return output.ToString();
    }

    /// <summary>
    /// gcc's and clang's suffixes for copies of a function (".cold", ".isra.0", ".constprop.0", ".llvm.123"): a dot and
    /// lower-case letters, digits or underscores, then any ".digits"; null when the text is not made of them.
    /// </summary>
    private static List<string>? CloneSuffixes(string text)
    {
        var clones = new List<string>();
        var position = 0;
        while (position < text.Length)
        {
            var start = position;
            if (text[position] != '.' || position + 1 >= text.Length || !IsCloneChar(text[position + 1])) return null;
            position += 2;
            while (position < text.Length && IsCloneChar(text[position])) position++;
            while (position + 1 < text.Length && text[position] == '.' && char.IsAsciiDigit(text[position + 1]))
            {
                position += 2;
                while (position < text.Length && char.IsAsciiDigit(text[position])) position++;
            }
            clones.Add(text[start..position]);
        }
        return clones;
    }

    private static bool IsCloneChar(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_';
}
