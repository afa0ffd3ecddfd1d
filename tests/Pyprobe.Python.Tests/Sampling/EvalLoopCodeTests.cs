using System.Globalization;
using System.Text.RegularExpressions;
using Pyprobe.Python.Sampling;
using Pyprobe.Python.Tests.Runtime;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>
/// Where each interpreter's eval loop lies (what <c>record --native</c> replaces with Python frames): the symbol's code, and
/// the part gcc split off it where it did — found by name in <c>.symtab</c>, or in a stripped executable as the
/// nameless function the symbol jumps into. Checked against the files' own tables (<c>nm</c>, <c>readelf</c>).
/// </summary>
public class EvalLoopCodeTests
{
    private static string Binary(string id)
    {
        var (kind, version) = (id.Split(':')[0], id.Split(':')[1]);
        if (kind == "pyenv") return Interpreters.PyenvLibPython(version);
        var cached = CachedPythons.Get(version);
        Requirements.EnsureFile(cached.Binary);
        return cached.Binary;
    }

    private static (ulong Start, ulong End) Symbol(ElfImage elf, string name)
    {
        var symbol = elf.Symbols.First(s => s.Name == name && s.IsDefined);
        return (symbol.Value, symbol.Value + symbol.Size);
    }

    private static ulong Hex(string text) => ulong.Parse(text, NumberStyles.HexNumber);

    /// <summary>
    /// What objdump's decoding of the symbol's code says: the functions of the unwind table (readelf) that a jump of the
    /// symbol's lands inside of, other than at their start (a tail call) and other than named functions.
    /// </summary>
    private static HashSet<(ulong, ulong)> JumpedIntoParts(string path, ElfImage elf, (ulong Start, ulong End) function)
    {
        var fdes = Regex.Matches(Interpreters.Run("readelf", "--debug-dump=frames", path), @"pc=([0-9a-f]+)\.\.([0-9a-f]+)")
            .Select(m => (Start: Hex(m.Groups[1].Value), End: Hex(m.Groups[2].Value))).ToList();
        var named = elf.Symbols.Where(s => s.IsFunction && s.IsDefined).Select(s => s.Value).ToHashSet();
        var code = Interpreters.Run("objdump", "-d", "--no-show-raw-insn", $"--start-address=0x{function.Start:x}", $"--stop-address=0x{function.End:x}", path);
        var parts = new HashSet<(ulong, ulong)>();
        foreach (Match jump in Regex.Matches(code, @"^\s*[0-9a-f]+:\s+j[a-z]+\s+([0-9a-f]+)\b", RegexOptions.Multiline))
        {
            var target = Hex(jump.Groups[1].Value);
            if (target >= function.Start && target < function.End) continue;
            var fde = fdes.FirstOrDefault(f => target >= f.Start && target < f.End);
            if (fde == default || fde.Start == target || named.Contains(fde.Start)) continue;
            parts.Add(fde);
        }
        return parts;
    }

    /// <summary>
    /// gcc splits the loop's rarely run code (and on Debian's 3.14 and 3.15, profile-guided, most of the loop: 1 KB stays
    /// under the symbol) into a part of its own: named <c>.cold</c> where <c>.symtab</c> is kept (pyenv), nameless in a
    /// stripped executable (Debian), found there as objdump finds it.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.8.18")]
    [InlineData("pyenv:3.10.13")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("pyenv:3.13.0")]
    [InlineData("debian:3.9")]
    [InlineData("debian:3.11")]
    [InlineData("debian:3.13")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void TheLoopIsItsSymbolAndThePartsSplitOffIt(string id)
    {
        var path = Binary(id);
        var elf = ElfImage.Open(path);
        var function = Symbol(elf, "_PyEval_EvalFrameDefault");
        var ranges = EvalLoopCode.Ranges(elf);
        Assert.Equal(function, ranges[0]);
        var stripped = elf.FindSection(".symtab") is null;
        var expected = stripped
            ? JumpedIntoParts(path, elf, function)
            : elf.Symbols.Where(s => s.Name.StartsWith("_PyEval_EvalFrameDefault.", StringComparison.Ordinal) && s.IsDefined)
                .Select(s => (s.Value, s.Value + s.Size)).ToHashSet();
        Assert.Equal(expected.Order(), ranges.Skip(1).Order());
        if (id is "debian:3.14" or "debian:3.15")
            Assert.True(ranges.Skip(1).Max(r => r.End - r.Start) >= 64 * 1024, string.Join(", ", ranges));
    }
}
