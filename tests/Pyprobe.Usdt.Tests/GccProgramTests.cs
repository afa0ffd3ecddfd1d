using System.Diagnostics;
using Pyprobe.Usdt.Elf;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// Real compiler output: Support/probe_forms.c emits stapsdt notes with inline asm (the same
/// directives as sys/sdt.h, so no systemtap-sdt-dev is needed), built -O0/-O2 × PIE/non-PIE.
/// GCC then picks the operand spellings itself: sym(%rip), 12+sym(%rip), SIB, registers, $imm.
/// </summary>
public class GccProgramTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string? Compile(string opt, string pie)
    {
        if (!File.Exists("/usr/bin/gcc"))
        {
            TestPythons.Missing("gcc", output);
            return null;
        }
        var src = Path.Combine(AppContext.BaseDirectory, "Support", "probe_forms.c");
        var exe = Path.Combine(_dir.Path, $"probe_forms{opt}{pie}");
        var psi = new ProcessStartInfo("/usr/bin/gcc", [opt, pie, "-o", exe, src]) { RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
        return exe;
    }

    [Theory]
    [InlineData("-O0", "-no-pie")]
    [InlineData("-O0", "-pie")]
    [InlineData("-O2", "-no-pie")]
    [InlineData("-O2", "-pie")]
    public void AllFormsParse_SymbolsResolve_AndMatchReadelf(string opt, string pie)
    {
        if (Compile(opt, pie) is not { } exe) return;
        var b = UsdtBinary.Open(exe);
        Assert.Equal(pie == "-pie" ? ElfFileKind.SharedObject : ElfFileKind.Executable, b.Kind);
        var tick = Assert.Single(b.Probes);
        Assert.Equal("test:tick", tick.Id);
        Assert.Equal(2, tick.Sites.Count);
        Readelf.AssertMatches(b, exe);

        var site = tick.Sites.Single(s => s.Arguments.Count == 6);
        output.WriteLine(site.ArgumentText);
        var a = site.Arguments;
        var counter = Assert.IsType<UsdtRipRelativeArgument>(a[0]);
        Assert.Equal(("g_counter", 0L, 8, true), (counter.Symbol, counter.Addend, counter.Size, counter.Signed));
        Assert.Equal(b.Elf.ResolveSymbolAddress("g_counter"), b.ResolveRipRelative(counter));
        var local = Assert.IsType<UsdtIndexedArgument>(a[1]);
        Assert.Equal(4, local.Scale);
        Assert.Contains(local.Base.FullName, new[] { "rbp", "rsp" });
        Assert.IsType<UsdtRegisterArgument>(a[2]);
        var table = Assert.IsType<UsdtRipRelativeArgument>(a[3]);
        Assert.Equal(("g_table", 12L), (table.Symbol, table.Addend));
        Assert.Equal(b.Elf.ResolveSymbolAddress("g_table") + 12, b.ResolveRipRelative(table));
        Assert.Equal(-42, Assert.IsType<UsdtConstantArgument>(a[4]).Value);
        Assert.Equal(4, Assert.IsType<UsdtRegisterArgument>(a[5]).Register.WidthBytes);

        // Both sites share the .probes semaphore; its file offset comes from the RW PT_LOAD.
        var sema = b.Elf.FindSymbols("test_tick_semaphore").Single(s => s.Table == ElfSymbolTableKind.Symtab);
        Assert.All(tick.Sites, s => Assert.Equal(sema.Value, s.SemaphoreAddress));
        Assert.All(tick.Sites, s => Assert.Equal(b.Elf.TryVirtualAddressToFileOffset(sema.Value, executable: false), s.SemaphoreFileOffset));
        // The probe instruction is the nop emitted at the site.
        Assert.All(tick.Sites, s => Assert.Equal(0x90, b.Elf.ReadFileBytes(s.FileOffset, 1)[0]));
    }
}
