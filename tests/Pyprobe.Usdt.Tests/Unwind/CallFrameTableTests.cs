using Pyprobe.Usdt.Elf;
using Pyprobe.Usdt.Unwind;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// Every row readelf prints for every FDE of real files, looked up at its first address and one byte later: the CFA,
/// return-address and rbp rules and the row's bounds must be readelf's.
/// </summary>
public class CallFrameTableTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static readonly string[] RegisterNames =
        ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"];

    public static TheoryData<string> Files => new() { "debian-python3.9", "pyenv-libpython3.12", "libc", "cfi-forms" };

    private string? PathOf(string file)
    {
        var path = file switch
        {
            "debian-python3.9" => TestPythons.Get("3.9", output)?.BinaryPath,
            "pyenv-libpython3.12" => "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0",
            "cfi-forms" => Assemble(),
            _ => "/lib/x86_64-linux-gnu/libc.so.6",
        };
        if (path is null) return null;
        if (!File.Exists(path) || !Readelf.Available)
        {
            TestPythons.Missing($"{path} or readelf", output);
            return null;
        }
        return path;
    }

    /// <summary>Support/cfi_forms.s linked alone; null (after reporting) without gcc.</summary>
    private string? Assemble()
    {
        if (!File.Exists("/usr/bin/gcc"))
        {
            TestPythons.Missing("gcc", output);
            return null;
        }
        var exe = Path.Combine(_dir.Path, "cfi_forms");
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/gcc",
            ["-nostdlib", "-static", "-no-pie", "-o", exe, Path.Combine(AppContext.BaseDirectory, "Support", "cfi_forms.s")]) { RedirectStandardError = true };
        using var gcc = System.Diagnostics.Process.Start(psi)!;
        var errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        Assert.True(gcc.ExitCode == 0, errors);
        return exe;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryReadelfRow_IsTheRowFoundAtItsAddress(string file)
    {
        if (PathOf(file) is not { } path) return;
        var elf = ElfImage.Open(path);
        var table = CallFrameTable.Load(elf)!;
        var plt = elf.Sections.Where(s => s.Name.StartsWith(".plt", StringComparison.Ordinal)).ToList();
        var rows = ReadelfFrames.Rows(path);
        var compared = 0;
        var comparedOneLater = 0;
        var expressions = new Dictionary<string, int>();
        for (var i = 0; i < rows.Count; i++)
        {
            var expected = rows[i];
            var next = i + 1 < rows.Count && rows[i + 1].Function == expected.Function ? rows[i + 1].Location : expected.FunctionEnd;
            foreach (var at in new[] { expected.Location, expected.Location + 1 })
            {
                if (at >= next) continue;
                Assert.True(table.TryFindRow(at, out var row), $"no row at 0x{at:x}");
                var where = $"0x{at:x} ({row})";
                Assert.Equal((expected.Location, next), (row.Start, row.End));
                Assert.Equal(expected.Cfa, Cfa(row));
                Assert.True(Matches(expected.ReturnAddress, row.ReturnAddress, unmentioned: false), $"ra {expected.ReturnAddress} at {where}");
                Assert.True(expected.Rbp is null ? row.Rbp.Kind == RegisterRuleKind.Unchanged : Matches(expected.Rbp, row.Rbp, unmentioned: true),
                    $"rbp {expected.Rbp} at {where}");
                if (row.Cfa == CfaKind.PltExpression)
                    Assert.Contains(plt, s => at >= s.Address && at < s.Address + s.Size);
                if (at == expected.Location)
                {
                    compared++;
                    if (row.Cfa != CfaKind.Register) expressions[$"{row.Cfa} at {Section(elf, at)}"] = expressions.GetValueOrDefault($"{row.Cfa} at {Section(elf, at)}") + 1;
                }
                else comparedOneLater++;
            }
        }
        output.WriteLine($"{path}: {table.Count} FDEs, {rows.Count} rows printed, {compared} compared at their address, {comparedOneLater} one byte later");
        foreach (var (what, count) in expressions) output.WriteLine($"  CFA {what}: {count} rows");
        Assert.Equal(rows.Count, compared);
        Assert.Equal(0, table.SkippedEntries);
        // readelf prints no augmentation per row: the one signal-frame CIE ("zPLRS") must mark its FDE's rows, only those.
        if (file == "cfi-forms")
            Assert.Equal(["p_signal"], elf.Symbols.Where(s => s.IsFunction && table.TryFindRow(s.Value, out var r) && r.IsSignalFrame).Select(s => s.Name));
    }

    private static string Section(ElfImage elf, ulong at) =>
        elf.Sections.FirstOrDefault(s => s.Allocated && at >= s.Address && at < s.Address + s.Size)?.Name ?? "?";

    private static string Cfa(UnwindRow row) => row.Cfa switch
    {
        CfaKind.Register => $"{RegisterNames[row.CfaRegister]}{row.CfaOffset:+0;-0}",
        _ => "exp",
    };

    /// <summary>
    /// readelf's cell for a rule. "u" is both DW_CFA_undefined and "a column another row mentions, not set here"
    /// (which for rbp, callee-saved, is unchanged); <paramref name="unmentioned"/> admits the second reading.
    /// </summary>
    private static bool Matches(string cell, RegisterRule rule, bool unmentioned) => rule.Kind switch
    {
        RegisterRuleKind.Undefined => cell == "u",
        RegisterRuleKind.Unchanged => cell == "s" || (unmentioned && cell == "u"),
        RegisterRuleKind.AtCfaOffset => cell == $"c{rule.Offset:+0;-0}",
        RegisterRuleKind.ValueCfaOffset => cell == $"v{rule.Offset:+0;-0}",
        RegisterRuleKind.InRegister => cell == $"r{rule.Offset} ({RegisterNames[rule.Offset]})",
        _ => cell is "exp" or "vexp",
    };
}
