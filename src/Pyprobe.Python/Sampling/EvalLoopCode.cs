using Pyprobe.Usdt.Elf;
using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// Where the interpreter's eval loop lies in its file: <c>_PyEval_EvalFrameDefault</c> and the parts the compiler split
/// off it. Debian's 3.14 and 3.15 (gcc, profile-guided) keep 1 KB under the symbol and run the loop's 84 KB in a part
/// of their own (<c>_PyEval_EvalFrameDefault.cold</c>, nameless in a stripped executable): a native frame there is the
/// eval loop too. Such a part is found by name where <c>.symtab</c> has it, otherwise as the unnamed function (an FDE of
/// <c>.eh_frame</c>) the symbol's code jumps into the middle of.
/// </summary>
public static class EvalLoopCode
{
    private const string Symbol = "_PyEval_EvalFrameDefault";

    /// <summary>The link-time ranges of the eval loop's code in <paramref name="elf"/>; empty when it has no such symbol.</summary>
    public static IReadOnlyList<(ulong Start, ulong End)> Ranges(ElfImage elf)
    {
        if (elf.TryFindUniqueSymbol(Symbol) is not { Size: > 0 } function) return [];
        var ranges = new List<(ulong Start, ulong End)> { (function.Value, function.Value + function.Size) };
        foreach (var part in elf.Symbols.Where(s => s.IsFunction && s.IsDefined && s.Size > 0 && s.Name.StartsWith(Symbol + ".", StringComparison.Ordinal)))
            ranges.Add((part.Value, part.Value + part.Size));
        if (ranges.Count > 1 || CallFrameTable.For(elf) is not { } frames) return ranges;

        // jmp rel32 (e9) and jcc rel32 (0f 80-8f) at every byte: a byte that only looks like one lands almost always
        // outside the code, or at a function's start (a tail call), which does not count.
        var code = elf.ReadVirtual(function.Value, (int)Math.Min(function.Size, 1 << 20));
        var named = new HashSet<ulong>(elf.Symbols.Where(s => s.IsFunction && s.IsDefined).Select(s => s.Value));
        for (var at = 0; at + 5 <= code.Length; at++)
        {
            int length;
            if (code[at] == 0xe9) length = 5;
            else if (code[at] == 0x0f && at + 6 <= code.Length && code[at + 1] is >= 0x80 and <= 0x8f) length = 6;
            else continue;
            var target = function.Value + (ulong)(at + length) + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(code.AsSpan(at + length - 4));
            if (target >= function.Value && target < function.Value + function.Size) continue;
            if (frames.TryFindFunction(target) is not { } part || part.Start == target || named.Contains(part.Start)) continue;
            if (!ranges.Contains(part)) ranges.Add(part);
        }
        return ranges;
    }
}
