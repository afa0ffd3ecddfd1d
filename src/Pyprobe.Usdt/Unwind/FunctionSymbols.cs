using Pyprobe.Usdt.Demangle;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The function symbols of one ELF file as address ranges: from .symtab when the file has function symbols there,
/// else from its separate debug file's, else from .dynsym (a stripped file's exported functions) with its
/// MiniDebugInfo's static functions (<see cref="DebugSymbolFiles"/>). Only [st_value, st_value + st_size) counts: an address
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
        // A debug file's .symtab names versioned definitions as the linker saw them ("__libc_start_main@@GLIBC_2.34").
        _names = functions.Select(f => f.Name.IndexOf('@') is > 0 and var at ? f.Name[..at] : f.Name).ToArray();
        _shownNames = new string?[_names.Length];
        _reach = new ulong[_ends.Length];
        for (var i = 0; i < _ends.Length; i++) _reach[i] = Math.Max(_ends[i], i > 0 ? _reach[i - 1] : 0);
    }

    public int Count => _names.Length;

    public static FunctionSymbols Read(ElfImage elf)
    {
        var own = DefinedFunctions(elf);
        if (own.Any(s => s.Table == ElfSymbolTableKind.Symtab)) return Build(own.Where(s => s.Table == ElfSymbolTableKind.Symtab));
        // Stripped: a separate debug file has every function the build had; a MiniDebugInfo the static ones the
        // exports lack.
        if (DebugSymbolFiles.SeparateDebugFile(elf) is { } debug
            && DefinedFunctions(debug).Where(s => s.Table == ElfSymbolTableKind.Symtab).ToList() is { Count: > 0 } complete)
            return Build(complete);
        var exported = own.Where(s => s.Table == ElfSymbolTableKind.Dynsym);
        if (DebugSymbolFiles.MiniDebugInfo(elf) is { } mini)
            exported = exported.Concat(DefinedFunctions(mini).Where(s => s.Table == ElfSymbolTableKind.Symtab));
        return Build(exported);
    }

    private static List<ElfSymbol> DefinedFunctions(ElfImage elf) =>
        elf.Symbols.Where(s => s.IsFunction && s.IsDefined && s.Size > 0).ToList();

    private static FunctionSymbols Build(IEnumerable<ElfSymbol> candidates)
    {
        // Aliases share a start: one name per start, the global one if any, then the one with fewer leading underscores
        // (malloc over __libc_malloc), then the longest range, then by name so the choice is stable.
        var functions = candidates
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
