using System.Diagnostics;
using Pyprobe.Usdt.Elf;
using Pyprobe.Usdt.Unwind;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// Names from stripped files: with .symtab gone only .dynsym is left, which (built -rdynamic) holds the exported
/// functions and never the static ones; an address in a static function must stay unnamed, not take the name of the
/// export before it.
/// </summary>
public class NativeSymbolizerTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static readonly string[] Chain = ["inner", "middle", "outer", "main"];

    private string? BuildStripped(string name, params string[] flags)
    {
        if (UnwindChainProgram.Compile(_dir.Path, name, output, ["-O2", .. flags]) is not { } exe) return null;
        var stripped = exe + ".stripped";
        File.Copy(exe, stripped);
        using var strip = Process.Start(new ProcessStartInfo("strip", [stripped]) { RedirectStandardError = true })!;
        strip.WaitForExit();
        Assert.Equal(0, strip.ExitCode);
        return exe;
    }

    /// <summary>The address of each chain function (from the unstripped file) one byte into it and at its last byte.</summary>
    private static IEnumerable<(string Function, ulong Address)> Inside(ElfImage unstripped) =>
        Chain.SelectMany(name =>
        {
            var symbol = unstripped.FindSymbols(name).Single(s => s.Table == ElfSymbolTableKind.Symtab);
            return new[] { (name, symbol.Value + 1), (name, symbol.Value + symbol.Size - 1) };
        });

    [Fact]
    public void StrippedRdynamic_NamesExportsOnly()
    {
        if (BuildStripped("exported", "-rdynamic") is not { } exe) return;
        var stripped = ElfImage.Open(exe + ".stripped");
        Assert.Null(stripped.FindSection(".symtab"));
        foreach (var (function, address) in Inside(ElfImage.Open(exe)))
            Assert.Equal(function == "middle" ? null : function, NativeSymbolizer.FunctionName(stripped, address));
    }

    [Fact]
    public void StrippedWithoutExports_NamesNothing()
    {
        if (BuildStripped("plain") is not { } exe) return;
        var stripped = ElfImage.Open(exe + ".stripped");
        foreach (var (_, address) in Inside(ElfImage.Open(exe)))
            Assert.Null(NativeSymbolizer.FunctionName(stripped, address));
    }

    [Fact]
    public void Unstripped_NamesStaticFunctionsToo()
    {
        if (UnwindChainProgram.Compile(_dir.Path, "full", output, "-O2") is not { } exe) return;
        var elf = ElfImage.Open(exe);
        foreach (var (function, address) in Inside(elf))
            Assert.Equal(function, NativeSymbolizer.FunctionName(elf, address));
    }

    [Fact]
    public void StrippedProcess_UnwindsByEhFrame_AndNamesWhatItCan()
    {
        if (BuildStripped("exported", "-rdynamic") is not { } exe) return;
        using var program = UnwindChainProgram.Run(exe + ".stripped");
        var modules = NativeModules.ForProcess(program.Pid);
        var unwind = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack, modules, 64);
        var names = unwind.ProgramCounters.Select((pc, i) => NativeSymbolizer.Describe(modules, pc, i > 0)).ToList();
        output.WriteLine(string.Join(" <- ", names));
        Assert.Equal(NativeUnwindStop.Complete, unwind.Stop);
        Assert.Equal("inner", names[0]);
        Assert.Matches("^exported\\.stripped\\+0x[0-9a-f]+$", names[1]); // middle, static
        Assert.Equal(["outer", "main"], names.Skip(2).Take(2));
        Assert.Equal(["__libc_start_main", "_start"], names.Skip(5));
    }
}
