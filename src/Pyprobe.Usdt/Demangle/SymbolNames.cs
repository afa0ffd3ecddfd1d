namespace Pyprobe.Usdt.Demangle;

/// <summary>How a native frame's function is named: Rust paths and C++ names demangled, anything else as it is.</summary>
public static class SymbolNames
{
    /// <summary>
    /// <paramref name="symbol"/> readable: a legacy Rust path without its hash, a C++ name without parameters
    /// (<c>c++filt -p</c>), else the symbol itself (C names, and what neither demangler can read).
    /// </summary>
    public static string Readable(string symbol) =>
        RustLegacyDemangler.Demangle(symbol) ?? CxxDemangler.WithoutParameters(symbol) ?? symbol;
}
