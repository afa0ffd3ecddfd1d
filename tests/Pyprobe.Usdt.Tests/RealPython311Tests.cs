using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// Debian 12's python3.11 3.11.2 (static libpython, non-PIE ET_EXEC) and libpython3.11.so.1.0
/// (ET_DYN). Expected figures come from `readelf -n` / `readelf -lW` on this machine; the
/// gc__start row is the one quoted in kernel-bpf.md §3.2.
/// </summary>
public class RealPython311Tests
{
    public const string Python311 = "/usr/bin/python3.11";
    public const string LibPython311 = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0";

    // name, args, vaddr, file offset, semaphore vaddr, semaphore file offset
    public static TheoryData<string, string, ulong, ulong, ulong, ulong> Python311Sites => new()
    {
        { "audit", "8@%rbx 8@%r15", 0x42512a, 0x2512a, 0xa84276, 0x683276 },
        { "function__entry", "8@%rbp 8@%r12 -4@%eax", 0x4f20a1, 0xf20a1, 0xa84260, 0x683260 },
        { "function__return", "8@%rbp 8@%r12 -4@%eax", 0x4f20d4, 0xf20d4, 0xa84262, 0x683262 },
        { "gc__done", "-8@%r12", 0x42873b, 0x2873b, 0xa84270, 0x683270 },
        { "gc__start", "-4@112(%rsp)", 0x4287f3, 0x287f3, 0xa8426e, 0x68326e },
        { "import__find__load__done", "8@%rax -4@%edx", 0x45275a, 0x5275a, 0xa84274, 0x683274 },
        { "import__find__load__start", "8@%rax", 0x45273a, 0x5273a, 0xa84272, 0x683272 },
        { "line", "8@%r14 8@%rax -4@%ebp", 0x43423c, 0x3423c, 0xa8426c, 0x68326c },
    };

    public static TheoryData<string, string, ulong, ulong, ulong, ulong> LibPython311Sites => new()
    {
        { "audit", "8@%rbp 8@%rbx", 0x2c14ea, 0x2c14ea, 0x760196, 0x75f196 },
        { "function__entry", "8@%rbp 8@%r12 -4@%eax", 0x26c4f2, 0x26c4f2, 0x760180, 0x75f180 },
        { "function__return", "8@%rbp 8@%r12 -4@%eax", 0x26c542, 0x26c542, 0x760182, 0x75f182 },
        { "gc__done", "-8@%rbx", 0x2d6673, 0x2d6673, 0x760190, 0x75f190 },
        { "gc__start", "-4@112(%rsp)", 0x2d5f70, 0x2d5f70, 0x76018e, 0x75f18e },
        { "import__find__load__done", "8@%rax -4@%edx", 0x296ff0, 0x296ff0, 0x760194, 0x75f194 },
        { "import__find__load__start", "8@%rax", 0x296fd8, 0x296fd8, 0x760192, 0x75f192 },
        { "line", "8@%r14 8@%rax -4@%edx", 0x10f3a3, 0x10f3a3, 0x76018c, 0x75f18c },
    };

    private static readonly string[] AllEight =
        ["audit", "function__entry", "function__return", "gc__done", "gc__start",
         "import__find__load__done", "import__find__load__start", "line"];

    [Fact]
    public void Python311_HasExactlyTheEightProbesWithOneSiteEach()
    {
        var b = UsdtBinary.Open(Python311);
        Assert.Equal(ElfFileKind.Executable, b.Kind);
        Assert.Equal(AllEight, b.Probes.Select(p => p.Name));
        Assert.All(b.Probes, p => Assert.Equal("python", p.Provider));
        Assert.All(b.Probes, p => Assert.Single(p.Sites));
        Assert.All(b.Probes, p => Assert.True(p.Sites[0].HasSemaphore));
        Assert.True(b.HasProvider("python"));
    }

    [Theory]
    [MemberData(nameof(Python311Sites))]
    public void Python311_SiteAddressesOffsetsAndArguments(string name, string args, ulong vaddr, ulong off, ulong sema, ulong semaOff) =>
        AssertSite(UsdtBinary.Open(Python311), name, args, vaddr, off, sema, semaOff);

    [Fact]
    public void LibPython311_HasExactlyTheEightProbes()
    {
        var b = UsdtBinary.Open(LibPython311);
        Assert.Equal(ElfFileKind.SharedObject, b.Kind);
        Assert.Equal(AllEight, b.Probes.Select(p => p.Name));
        Assert.All(b.Probes, p => Assert.Single(p.Sites));
    }

    [Theory]
    [MemberData(nameof(LibPython311Sites))]
    public void LibPython311_SiteAddressesOffsetsAndArguments(string name, string args, ulong vaddr, ulong off, ulong sema, ulong semaOff) =>
        AssertSite(UsdtBinary.Open(LibPython311), name, args, vaddr, off, sema, semaOff);

    [Fact]
    public void Python311_ParsedArgumentsOfFunctionEntryAndGcStart()
    {
        var b = UsdtBinary.Open(Python311);
        var entry = b.FindProbe("python", "function__entry")!.Sites[0].Arguments;
        Assert.Equal(32, Assert.IsType<UsdtRegisterArgument>(entry[0]).PtRegsOffset);   // rbp
        Assert.Equal(24, Assert.IsType<UsdtRegisterArgument>(entry[1]).PtRegsOffset);   // r12
        var lineno = Assert.IsType<UsdtRegisterArgument>(entry[2]);                     // eax
        Assert.Equal((80, 4, true), (lineno.PtRegsOffset, lineno.Size, lineno.Signed));

        var gen = Assert.IsType<UsdtMemoryArgument>(Assert.Single(b.FindProbe("python", "gc__start")!.Sites[0].Arguments));
        Assert.Equal(("rsp", 152, 112L, 4, true), (gen.Base.Name, gen.Base.PtRegsOffset, gen.Displacement, gen.Size, gen.Signed));
    }

    [Fact]
    public void Python311_ElfFactsAndSymbols()
    {
        var elf = UsdtBinary.Open(Python311).Elf;
        Assert.Equal(4, elf.LoadSegments.Count);
        Assert.Equal(new ElfLoadSegment(0x41f000, 0x2b2289, 0x1f000, 0x2b2289, true, false, true), elf.LoadSegments[1]);
        Assert.Equal(new ElfLoadSegment(0x945dc8, 0x1832f0, 0x544dc8, 0x13e4b0, true, true, false), elf.LoadSegments[3]);
        Assert.Equal(0x8cc5a0UL, elf.FindSection(".stapsdt.base")!.Address);
        Assert.Equal(0xa5b740UL, elf.FindSection(".PyRuntime")!.Address);
        Assert.NotNull(elf.FindSection(".rodata"));
        Assert.NotNull(elf.FindSection(".data"));
        Assert.Null(elf.FindSection(".symtab")); // stripped: only .dynsym
        Assert.Equal(0xa5b740UL, elf.ResolveSymbolAddress("_PyRuntime"));
        Assert.Equal(0x8cc3e8UL, elf.ResolveSymbolAddress("Py_Version"));
        var missing = Assert.Throws<UsdtException>(() => elf.ResolveSymbolAddress("no_such_symbol_xyz"));
        Assert.Contains("stripped", missing.Message);
    }

    [Theory]
    [InlineData(Python311)]
    [InlineData(LibPython311)]
    public void MatchesReadelf(string path)
    {
        Assert.True(Readelf.Available, "binutils readelf is needed as the reference");
        Readelf.AssertMatches(UsdtBinary.Open(path), path);
    }

    /// <summary>Every named symbol of .symtab and .dynsym, as readelf reads them: a stripped executable and a pyenv libpython with both tables.</summary>
    [Theory]
    [InlineData(Python311)]
    [InlineData("/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0")]
    public void SymbolsMatchReadelf(string path)
    {
        Assert.True(Readelf.Available, "binutils readelf is needed as the reference");
        if (!File.Exists(path)) Assert.Fail($"{path} is missing");
        // ElfImage lists .symtab first (its local symbols win a lookup); readelf prints .dynsym first.
        var expected = Readelf.Symbols(path).OrderBy(s => s.Table == ".symtab" ? 0 : 1).ToList();
        var actual = ElfImage.Open(path).Symbols.Select(s => new Readelf.Symbol(s.Table == ElfSymbolTableKind.Symtab ? ".symtab" : ".dynsym", s.Name, s.Value, s.Size,
            s.IsFunction ? "FUNC" : s.IsObject ? "OBJECT" : "?", s.IsGlobal ? "GLOBAL|WEAK" : "LOCAL", s.IsDefined)).ToList();
        Assert.True(expected.Count > 1000, $"readelf listed only {expected.Count} symbols");
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var e = expected[i];
            var normalised = e with
            {
                Type = e.Type is "FUNC" or "OBJECT" ? e.Type : "?",
                Bind = e.Bind is "GLOBAL" or "WEAK" ? "GLOBAL|WEAK" : "LOCAL",
            };
            Assert.Equal(normalised, actual[i]);
        }
    }

    /// <summary>
    /// A lookup by name (the raw-table index) finds exactly the symbols of that name the full list has, in its order,
    /// for every name in the file — duplicates across and within tables included — and nothing for names it lacks.
    /// </summary>
    [Theory]
    [InlineData(Python311)]
    [InlineData("/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0")]
    [InlineData("/root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0")]
    public void LookupsByNameMatchTheFullList(string path)
    {
        if (!File.Exists(path)) Assert.Fail($"{path} is missing");
        var all = ElfImage.OpenInMemory(path, File.ReadAllBytes(path), (int)new FileInfo(path).Length).Symbols;
        var indexed = ElfImage.OpenInMemory(path, File.ReadAllBytes(path), (int)new FileInfo(path).Length);
        var byName = all.GroupBy(s => s.Name, StringComparer.Ordinal).ToList();
        Assert.True(byName.Count > 1000, $"only {byName.Count} names");
        // A file with both tables names its exported symbols in each.
        if (all.Any(s => s.Table == ElfSymbolTableKind.Symtab)) Assert.Contains(byName, g => g.Count() > 1);
        foreach (var group in byName) Assert.Equal(group.ToList(), indexed.FindSymbols(group.Key));
        foreach (var absent in new[] { "PyCode_Type_", "_PyRuntim", "", "no such symbol" }) Assert.Empty(indexed.FindSymbols(absent));
    }

    /// <summary>
    /// Reading symbols maps the file but keeps no descriptor open: a run following many processes opens an image per
    /// process. The symbols stay readable after the descriptor is gone.
    /// </summary>
    [Fact]
    public void SymbolLookupsKeepNoFileOpen()
    {
        const string path = "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0";
        if (!File.Exists(path)) Assert.Fail($"{path} is missing");
        // A copy: ElfImage.Open shares one image per file within the process, and another test may have opened this one.
        var copy = Path.Combine(Path.GetTempPath(), $"pyprobe-fdtest-{Environment.ProcessId}.so");
        File.Copy(path, copy, overwrite: true);
        try
        {
            static int OpenOnCopy(string copy) => Directory.GetFiles("/proc/self/fd").Count(fd =>
            {
                try { return new FileInfo(fd).LinkTarget == copy; }
                catch (IOException) { return false; }
            });
            var elf = ElfImage.Open(copy);
            Assert.Equal(2, elf.FindSymbols("PyCode_Type").Count); // .symtab and .dynsym
            Assert.Equal(0, OpenOnCopy(copy));
            Assert.NotNull(elf.TryFindUniqueSymbol("_PyRuntime"));
            Assert.NotEmpty(elf.FunctionRanges("_PyEval_EvalFrameDefault"));
        }
        finally
        {
            File.Delete(copy);
        }
    }

    /// <summary>
    /// ReadVirtualInto gives ReadVirtual's bytes into a reused buffer: all that fit inside a segment, what the segment
    /// holds at its end, nothing in its zero-filled tail or outside every segment.
    /// </summary>
    [Fact]
    public void ReadVirtualIntoCopiesWhatTheSegmentHolds()
    {
        var elf = ElfImage.Open(Python311);
        var text = elf.LoadSegments.First(s => s.Executable);
        var buffer = new byte[4096];
        Assert.Equal(4096, elf.ReadVirtualInto(text.VirtualAddress + 64, buffer));
        Assert.Equal(elf.ReadVirtual(text.VirtualAddress + 64, 4096), buffer);
        var last = text.VirtualAddress + text.FileSize - 100;
        Assert.Equal(100, elf.ReadVirtualInto(last, buffer));
        Assert.Equal(elf.ReadVirtual(last, 100), buffer[..100]);
        var data = elf.LoadSegments.Last();
        Assert.True(data.MemorySize > data.FileSize, "the data segment has a zero-filled tail (.bss)");
        Assert.Equal(0, elf.ReadVirtualInto(data.VirtualAddress + data.FileSize + 8, buffer));
        Assert.Equal(0, elf.ReadVirtualInto(ulong.MaxValue - 4096, buffer));
    }

    /// <summary>The function ranges read from the raw tables are the full list's defined, sized functions outside the excluded names.</summary>
    [Theory]
    [InlineData(Python311)]
    [InlineData("/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0")]
    public void FunctionRangesMatchTheFullList(string path)
    {
        if (!File.Exists(path)) Assert.Fail($"{path} is missing");
        const string excluded = "_PyEval_EvalFrameDefault";
        var expected = ElfImage.OpenInMemory(path, File.ReadAllBytes(path), (int)new FileInfo(path).Length).Symbols
            .Where(s => s.IsFunction && s.IsDefined && s.Size > 0 && !s.Name.StartsWith(excluded, StringComparison.Ordinal))
            .Select(s => (s.Value, s.Value + s.Size)).Distinct().OrderBy(r => r.Item1).ThenBy(r => r.Item2).ToList();
        var actual = ElfImage.OpenInMemory(path, File.ReadAllBytes(path), (int)new FileInfo(path).Length).FunctionRanges(excluded);
        Assert.True(expected.Count > 1000, $"only {expected.Count} functions");
        Assert.Equal(expected, actual);
    }

    internal static void AssertSite(UsdtBinary b, string name, string args, ulong vaddr, ulong off, ulong sema, ulong semaOff)
    {
        var site = Assert.Single(b.FindProbe("python", name)!.Sites);
        Assert.Equal(args, site.ArgumentText);
        Assert.Equal(args.Split(' ').Length, site.Arguments.Count);
        Assert.Equal(vaddr, site.Address);
        Assert.Equal(off, site.FileOffset);
        Assert.Equal(sema, site.SemaphoreAddress);
        Assert.Equal(semaOff, site.SemaphoreFileOffset);
        Assert.Equal(0UL, site.SemaphoreFileOffset % 2); // the kernel needs 2-byte aligned ref_ctr_offset
    }
}
