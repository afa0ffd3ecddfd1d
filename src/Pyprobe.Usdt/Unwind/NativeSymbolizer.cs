using System.Runtime.CompilerServices;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// Names native code addresses by the function symbol that holds them (see <see cref="FunctionSymbols"/>), the symbol
/// table of each file read once and kept as long as its image.
/// </summary>
public static class NativeSymbolizer
{
    private static readonly ConditionalWeakTable<ElfImage, FunctionSymbols> ByImage = new();

    /// <summary>The function of <paramref name="elf"/> holding link-time address <paramref name="vaddr"/>, or null.</summary>
    public static string? FunctionName(ElfImage elf, ulong vaddr)
    {
        try
        {
            return ByImage.GetValue(elf, FunctionSymbols.Read).Find(vaddr);
        }
        catch (UsdtException)
        {
            return null; // an unreadable symbol table names nothing; the caller falls back to file+offset
        }
    }

    /// <summary>
    /// A frame's text: "function" when a symbol holds it, else "file+0x1f2e" (the link-time address, what
    /// <c>addr2line -e file</c> takes), else "0x7f..." outside any module. A return address (<paramref name="isReturnAddress"/>,
    /// every frame but the first) is named by its call instruction, the byte before: a call can end a function.
    /// </summary>
    public static string Describe(INativeCodeMap modules, ulong programCounter, bool isReturnAddress)
    {
        var address = isReturnAddress ? programCounter - 1 : programCounter;
        if (!modules.TryLocate(address, out var module, out var vaddr)) return $"0x{programCounter:x}";
        return FunctionName(module.Elf, vaddr) ?? $"{Path.GetFileName(module.Path)}+0x{vaddr + (isReturnAddress ? 1UL : 0):x}";
    }
}
