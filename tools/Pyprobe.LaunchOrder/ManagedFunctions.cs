using Pyprobe.Usdt.Elf;

namespace Pyprobe.LaunchOrder;

/// <summary>
/// The managed methods of a NativeAOT binary: one entry per start address in its <c>__managedcode</c> section, with every
/// name the symbol table gives that address (the compiler's mangled name, which the order file must use, and aliases such
/// as an export's), and the file offset a uprobe on it needs.
/// </summary>
internal sealed record ManagedFunction(ulong FileOffset, IReadOnlyList<string> Names);

internal static class ManagedFunctions
{
    public const string Section = "__managedcode";

    /// <param name="binary">The stripped executable that runs (its load segments turn addresses into file offsets).</param>
    /// <param name="symbols">Its symbols: the .dbg file the build writes beside it (same addresses).</param>
    public static IReadOnlyList<ManagedFunction> Read(string binary, string symbols)
    {
        var image = ElfImage.Open(binary);
        var table = ElfImage.Open(symbols);
        var code = table.FindSection(Section) ?? throw new InvalidOperationException($"{symbols} has no {Section} section: not a NativeAOT binary's symbols");
        var functions = new List<ManagedFunction>();
        foreach (var group in table.Symbols
                     .Where(s => s.IsDefined && s.Table == ElfSymbolTableKind.Symtab && s.Value >= code.Address && s.Value < code.Address + code.Size)
                     .GroupBy(s => s.Value)
                     .OrderBy(g => g.Key))
        {
            var offset = image.TryVirtualAddressToFileOffset(group.Key, executable: true)
                ?? throw new InvalidOperationException($"0x{group.Key:x} is in {symbols}'s {Section} but in no executable segment of {binary}: the two files are not from one build");
            functions.Add(new ManagedFunction(offset, group.Select(s => s.Name).Distinct().ToList()));
        }
        if (functions.Count == 0) throw new InvalidOperationException($"{symbols} names no function in {Section}");
        return functions;
    }
}
