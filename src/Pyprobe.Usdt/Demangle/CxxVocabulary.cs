namespace Pyprobe.Usdt.Demangle;

/// <summary>The fixed words of the Itanium C++ mangling: builtin types, operators, the standard abbreviations.</summary>
internal static class CxxVocabulary
{
    /// <summary>One-letter builtin types.</summary>
    public static string? Builtin(char code) => code switch
    {
        'v' => "void",
        'w' => "wchar_t",
        'b' => "bool",
        'c' => "char",
        'a' => "signed char",
        'h' => "unsigned char",
        's' => "short",
        't' => "unsigned short",
        'i' => "int",
        'j' => "unsigned int",
        'l' => "long",
        'm' => "unsigned long",
        'x' => "long long",
        'y' => "unsigned long long",
        'n' => "__int128",
        'o' => "unsigned __int128",
        'f' => "float",
        'd' => "double",
        'e' => "long double",
        'g' => "__float128",
        'z' => "...",
        _ => null,
    };

    /// <summary>Builtin types spelled <c>D</c> + letter.</summary>
    public static string? DBuiltin(char code) => code switch
    {
        'n' => "decltype(nullptr)",
        'a' => "auto",
        'c' => "decltype(auto)",
        'i' => "char32_t",
        's' => "char16_t",
        'u' => "char8_t",
        'f' => "decimal32",
        'd' => "decimal64",
        'e' => "decimal128",
        'h' => "half",
        _ => null,
    };

    /// <summary>How a literal of a builtin integer type is written in a template argument: its suffix, or null for "(type)value".</summary>
    public static string? LiteralSuffix(char code) => code switch
    {
        'i' => "",
        'j' => "u",
        'l' => "l",
        'm' => "ul",
        'x' => "ll",
        'y' => "ull",
        _ => null,
    };

    /// <summary>The operator an operator name's two letters spell, as written after "operator".</summary>
    public static string? Operator(string code) => code switch
    {
        "nw" => " new",
        "na" => " new[]",
        "dl" => " delete",
        "da" => " delete[]",
        "aw" => " co_await",
        "ps" => "+",
        "ng" => "-",
        "ad" => "&",
        "de" => "*",
        "co" => "~",
        "pl" => "+",
        "mi" => "-",
        "ml" => "*",
        "dv" => "/",
        "rm" => "%",
        "an" => "&",
        "or" => "|",
        "eo" => "^",
        "aS" => "=",
        "pL" => "+=",
        "mI" => "-=",
        "mL" => "*=",
        "dV" => "/=",
        "rM" => "%=",
        "aN" => "&=",
        "oR" => "|=",
        "eO" => "^=",
        "ls" => "<<",
        "rs" => ">>",
        "lS" => "<<=",
        "rS" => ">>=",
        "eq" => "==",
        "ne" => "!=",
        "lt" => "<",
        "gt" => ">",
        "le" => "<=",
        "ge" => ">=",
        "ss" => "<=>",
        "nt" => "!",
        "aa" => "&&",
        "oo" => "||",
        "pp" => "++",
        "mm" => "--",
        "cm" => ",",
        "pm" => "->*",
        "pt" => "->",
        "cl" => "()",
        "ix" => "[]",
        "qu" => "?",
        _ => null,
    };

    /// <summary>
    /// The standard abbreviations (<c>Sa</c>, <c>Ss</c>...) in the full form c++filt writes, and the name their
    /// constructors take.
    /// </summary>
    public static SubstitutionNode? Abbreviation(char code) => code switch
    {
        'a' => new SubstitutionNode("std::allocator", "allocator"),
        'b' => new SubstitutionNode("std::basic_string", "basic_string"),
        's' => new SubstitutionNode("std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "basic_string"),
        'i' => new SubstitutionNode("std::basic_istream<char, std::char_traits<char> >", "basic_istream"),
        'o' => new SubstitutionNode("std::basic_ostream<char, std::char_traits<char> >", "basic_ostream"),
        'd' => new SubstitutionNode("std::basic_iostream<char, std::char_traits<char> >", "basic_iostream"),
        _ => null,
    };
}
