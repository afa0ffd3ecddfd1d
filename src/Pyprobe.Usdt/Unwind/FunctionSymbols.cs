using Pyprobe.Usdt.Demangle;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The function symbols of one ELF file as address ranges: from .symtab when the file has function symbols there,
/// else from .dynsym (a stripped file's exported functions). Only [st_value, st_value + st_size) counts: an address
/// past a function's end belongs to no symbol, because in a stripped file the nearest preceding export is usually
/// some other function entirely (a static one the strip removed). C++ names are given demangled, without parameters
/// (<c>c++filt -p</c>: a frame names the function, and a profile keeps one row for its hot and cold parts), Rust paths
/// without their hash.
/// </summary>
internal sealed class FunctionSymbols
{
    private readonly ulong[] _starts;
    private readonly ulong[] _ends;
    // The largest end among entries [0, i]: a backward scan stops once no earlier range can reach the address.
    private readonly ulong[] _reach;
    private readonly string[] _names;
    // Demangled on first use: a file has thousands of symbols, a profile touches few.
    private readonly string?[] _shownNames;

    private FunctionSymbols(List<ElfSymbol> functions)
    {
        _starts = functions.Select(f => f.Value).ToArray();
        _ends = functions.Select(f => f.Value + f.Size).ToArray();
        _names = functions.Select(f => f.Name).ToArray();
        _shownNames = new string?[_names.Length];
        _reach = new ulong[_ends.Length];
        for (var i = 0; i < _ends.Length; i++) _reach[i] = Math.Max(_ends[i], i > 0 ? _reach[i - 1] : 0);
    }

    public int Count => _names.Length;

    public static FunctionSymbols Read(ElfImage elf)
    {
        var defined = elf.Symbols.Where(s => s.IsFunction && s.IsDefined && s.Size > 0).ToList();
        var table = defined.Any(s => s.Table == ElfSymbolTableKind.Symtab) ? ElfSymbolTableKind.Symtab : ElfSymbolTableKind.Dynsym;
        // Aliases share a start: one name per start, the global one if any, then the one with fewer leading underscores
        // (malloc over __libc_malloc), then the longest range, then by name so the choice is stable.
        var functions = defined.Where(s => s.Table == table)
            .GroupBy(s => s.Value)
            .Select(aliases => aliases
                .OrderByDescending(s => s.IsGlobal)
                .ThenBy(s => s.Name.Length - s.Name.TrimStart('_').Length)
                .ThenByDescending(s => s.Size)
                .ThenBy(s => s.Name, StringComparer.Ordinal)
                .First())
            .OrderBy(s => s.Value)
            .ToList();
        return new FunctionSymbols(functions);
    }

    /// <summary>The function whose range holds <paramref name="vaddr"/> (the innermost when ranges nest), or null.</summary>
    public string? Find(ulong vaddr)
    {
        var index = Array.BinarySearch(_starts, vaddr);
        if (index < 0) index = ~index - 1;
        for (var i = index; i >= 0 && _reach[i] > vaddr; i--)
            if (vaddr < _ends[i]) return _shownNames[i] ??= SymbolNames.Readable(_names[i]);
        return null;
    }
}
