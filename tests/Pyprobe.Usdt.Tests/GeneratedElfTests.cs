using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Tests;

/// <summary>Odd-but-legal note layouts and malformed files, built with <see cref="TestElfWriter"/>.</summary>
public class GeneratedElfTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(false, 0x400000UL)]
    [InlineData(true, 0UL)]
    public void FileOffsets_GoThroughTheContainingPtLoad(bool sharedObject, ulong imageBase)
    {
        var w = new TestElfWriter { SharedObject = sharedObject, ImageBase = imageBase };
        w.Site("prov", "p", 0x123, 0x10, "8@%rdi");
        var b = UsdtBinary.Open(w.WriteTemp(_dir));
        var s = Assert.Single(Assert.Single(b.Probes).Sites);
        Assert.Equal(sharedObject ? ElfFileKind.SharedObject : ElfFileKind.Executable, b.Kind);
        Assert.Equal(w.TextAddress + 0x123, s.Address);
        Assert.Equal(TestElfWriter.TextFileOffset + 0x123, s.FileOffset);
        Assert.Equal(w.ProbesAddress + 0x10, s.SemaphoreAddress);
        // The data segment's vaddr−offset delta (0x1000 + base) differs from text's: only the PT_LOAD lookup gets this right.
        Assert.Equal(TestElfWriter.DataFileOffset + 0x10, s.SemaphoreFileOffset);
    }

    [Fact]
    public void Prelink_DeltaIsAppliedToLocationAndSemaphore()
    {
        var w = new TestElfWriter();
        const ulong delta = 0x200000; // as if prelink had moved the file up by 2 MiB after the notes were written
        w.Note("prov", "moved", w.TextAddress + 0x40 - delta, w.StapsdtBaseAddress - delta, w.ProbesAddress + 4 - delta, "-4@%eax");
        var s = Assert.Single(Assert.Single(UsdtBinary.Open(w.WriteTemp(_dir)).Probes).Sites);
        Assert.Equal(w.TextAddress + 0x40, s.Address);
        Assert.Equal(TestElfWriter.TextFileOffset + 0x40, s.FileOffset);
        Assert.Equal(w.ProbesAddress + 4, s.SemaphoreAddress);
        Assert.Equal(TestElfWriter.DataFileOffset + 4, s.SemaphoreFileOffset);
    }

    [Fact]
    public void Prelink_NoAdjustmentWithoutStapsdtBaseSectionOrWithZeroBase()
    {
        var w = new TestElfWriter { IncludeStapsdtBase = false };
        w.Note("prov", "a", w.TextAddress + 8, w.StapsdtBaseAddress - 0x1000, 0, "");
        var noSection = Assert.Single(Assert.Single(UsdtBinary.Open(w.WriteTemp(_dir, "a.elf")).Probes).Sites);
        Assert.Equal(w.TextAddress + 8, noSection.Address);

        var w2 = new TestElfWriter();
        w2.Note("prov", "b", w2.TextAddress + 8, 0, 0, "");
        var zeroBase = Assert.Single(Assert.Single(UsdtBinary.Open(w2.WriteTemp(_dir, "b.elf")).Probes).Sites);
        Assert.Equal(w2.TextAddress + 8, zeroBase.Address);
        Assert.False(zeroBase.HasSemaphore);
        Assert.Equal(0UL, zeroBase.SemaphoreAddress);
        Assert.Empty(zeroBase.Arguments);
    }

    [Fact]
    public void MultipleSites_AreGroupedPerProbeAndSortedByAddress_ProbesSortedByProviderThenName()
    {
        var w = new TestElfWriter();
        w.Site("python", "audit", 0x300, 0x2, "8@%rbx 8@%r15")
         .Site("python", "import__find__load__start", 0x100, 0x4, "8@%rax")
         .Site("python", "audit", 0x080, 0x2, "8@%rbp 8@%rbx")
         .RawNoteBytes(TestElfWriter.RawNote("GNU", 3, new byte[16]))      // foreign note: skipped
         .RawNoteBytes(TestElfWriter.RawNote("stapsdt", 7, new byte[8]))   // other type: skipped
         .Site("aaa", "zzz", 0x10, null, "")
         .Site("python", "audit", 0x200, 0x2, "8@%r12 8@%r13")
         .Site("python", "import__find__load__start", 0x180, 0x4, "8@%rdx");
        var b = UsdtBinary.Open(w.WriteTemp(_dir));
        Assert.Equal(["aaa:zzz", "python:audit", "python:import__find__load__start"], b.Probes.Select(p => p.Id));
        var audit = b.FindProbe("python", "audit")!;
        Assert.Equal([w.TextAddress + 0x80, w.TextAddress + 0x200, w.TextAddress + 0x300], audit.Sites.Select(s => s.Address));
        Assert.Equal(["8@%rbp 8@%rbx", "8@%r12 8@%r13", "8@%rbx 8@%r15"], audit.Sites.Select(s => s.ArgumentText));
        Assert.All(audit.Sites, s => Assert.Equal(TestElfWriter.DataFileOffset + 2, s.SemaphoreFileOffset));
        Assert.Equal(2, b.FindProbe("python", "import__find__load__start")!.Sites.Count);
        Assert.Null(b.FindProbe("python", "line"));
    }

    [Fact]
    public void RipRelative_ResolvesSymbolFromSymtab_AndComputesIpDelta()
    {
        var w = new TestElfWriter();
        w.Site("test", "tick", 0x40, 0, "-8@g_counter(%rip) -4@12+g_table(%rip) 8@g_ptr-8(%rip)")
         .DataSymbol("g_counter", w.DataAddress + 0x10)
         .DataSymbol("g_table", w.DataAddress + 0x40, 32, local: true)
         .DataSymbol("g_ptr", w.DataAddress + 0x80);
        var b = UsdtBinary.Open(w.WriteTemp(_dir));
        var site = b.Probes[0].Sites[0];
        var args = site.Arguments.Cast<UsdtRipRelativeArgument>().ToList();
        Assert.Equal(w.DataAddress + 0x10, b.ResolveRipRelative(args[0]));
        Assert.Equal(w.DataAddress + 0x40 + 12, b.ResolveRipRelative(args[1]));
        Assert.Equal(w.DataAddress + 0x80 - 8, b.ResolveRipRelative(args[2]));
        // runtime address = ctx->ip + delta
        Assert.Equal((long)(w.DataAddress + 0x10 - site.Address), b.RipRelativeDelta(site, args[0]));
    }

    [Fact]
    public void SymbolResolution_MissingAndAmbiguousAreClearErrors()
    {
        var w = new TestElfWriter();
        w.Site("test", "tick", 0x40, 0, "8@dup(%rip) 8@nosuch(%rip)")
         .DataSymbol("dup", w.DataAddress, local: true)
         .DataSymbol("dup", w.DataAddress + 8, local: true)
         .DataSymbol("same", w.DataAddress + 16, local: true)
         .DataSymbol("same", w.DataAddress + 16);
        var b = UsdtBinary.Open(w.WriteTemp(_dir)); // opening does not need the symbols
        var args = b.Probes[0].Sites[0].Arguments.Cast<UsdtRipRelativeArgument>().ToList();
        var amb = Assert.Throws<UsdtException>(() => b.ResolveRipRelative(args[0]));
        Assert.Contains("'dup' is ambiguous", amb.Message);
        var missing = Assert.Throws<UsdtException>(() => b.ResolveRipRelative(args[1]));
        Assert.Contains("'nosuch' is not defined", missing.Message);
        Assert.Equal(w.DataAddress + 16, b.ResolveSymbolAddress("same")); // same value twice is fine
    }

    [Fact]
    public void NoNotes_OpensWithNoProbes()
    {
        var b = UsdtBinary.Open(new TestElfWriter().WriteTemp(_dir));
        Assert.Empty(b.Probes);
        Assert.False(b.HasProvider("python"));
    }

    [Fact]
    public void SiteOutsideExecutableSegment_IsAClearError()
    {
        var w = new TestElfWriter();
        w.Note("prov", "bad", w.DataAddress, w.StapsdtBaseAddress, 0, "");
        var e = Assert.Throws<UsdtException>(() => UsdtBinary.Open(w.WriteTemp(_dir)));
        Assert.Contains("prov:bad", e.Message);
        Assert.Contains("executable PT_LOAD", e.Message);
    }

    [Fact]
    public void SemaphoreInExecutableSegment_IsAClearError()
    {
        var w = new TestElfWriter();
        w.Note("prov", "bad", w.TextAddress, w.StapsdtBaseAddress, w.TextAddress + 0x10, "");
        var e = Assert.Throws<UsdtException>(() => UsdtBinary.Open(w.WriteTemp(_dir)));
        Assert.Contains("semaphore of probe prov:bad", e.Message);
    }

    [Fact]
    public void BadArgumentInNote_NamesTheProbe()
    {
        var w = new TestElfWriter();
        w.Site("python", "gc__start", 0, 0, "-4@%ah");
        var e = Assert.Throws<UsdtArgumentException>(() => UsdtBinary.Open(w.WriteTemp(_dir)));
        Assert.Equal("python:gc__start", e.Probe);
        Assert.Equal("-4@%ah", e.ArgumentText);
    }

    [Fact]
    public void EveryTruncation_GivesUsdtException()
    {
        var w = new TestElfWriter();
        w.Site("python", "audit", 0x10, 2, "8@%rbx").DataSymbol("x", w.DataAddress);
        var full = w.Build();
        var path = Path.Combine(_dir.Path, "t.elf");
        var lengths = Enumerable.Range(0, 80).Concat(Enumerable.Range(1, full.Length - 1).Where(n => n % 61 == 0)).Concat([full.Length - 1]);
        foreach (int n in lengths)
        {
            File.WriteAllBytes(path, full[..n]);
            var e = Record.Exception(() => UsdtBinary.Open(path));
            Assert.True(e is UsdtException, $"length {n}: {e?.GetType().Name ?? "no exception"}: {e?.Message}");
        }
    }

    [Theory]
    [InlineData(0x7fff_fff0u, 20u)]   // namesz runs past the section
    [InlineData(8u, 0xffff_ff00u)]    // descsz runs past the section
    [InlineData(8u, 10u)]             // descriptor too short for three addresses
    public void CorruptNoteSizes_GiveUsdtException(uint namesz, uint descsz)
    {
        var note = TestElfWriter.RawNote("stapsdt", 3, new byte[40]);
        BitConverter.TryWriteBytes(note.AsSpan(0, 4), namesz);
        BitConverter.TryWriteBytes(note.AsSpan(4, 4), descsz);
        var e = Assert.Throws<UsdtException>(() => StapsdtNoteReader.Parse(note, "x"));
        Assert.Contains("malformed .note.stapsdt", e.Message);
    }

    [Fact]
    public void UnterminatedStrings_GiveUsdtException()
    {
        var desc = new byte[24].Concat("python\0audit\08@%rax"u8.ToArray()).ToArray(); // no final NUL
        var e = Assert.Throws<UsdtException>(() => StapsdtNoteReader.Parse(TestElfWriter.RawNote("stapsdt", 3, desc), "x"));
        Assert.Contains("arguments string is not NUL-terminated", e.Message);
    }

    [Fact]
    public void TrailingZeroPaddingInNoteSection_IsIgnored()
    {
        var desc = new byte[24].Concat("p\0n\0\0"u8.ToArray()).ToArray();
        var notes = StapsdtNoteReader.Parse(TestElfWriter.RawNote("stapsdt", 3, desc).Concat(new byte[8]).ToArray(), "x");
        Assert.Equal("p:n", Assert.Single(notes).ProbeId);
    }

    [Theory]
    [InlineData("notelf", "is not an ELF file")]
    [InlineData("elf32", "32-bit")]
    [InlineData("bigendian", "big-endian")]
    [InlineData("aarch64", "not an x86-64")]
    [InlineData("relocatable", "neither an executable nor a shared object")]
    [InlineData("empty", "is not an ELF file")]
    public void WrongKindsOfFile_GiveSpecificMessages(string kind, string message)
    {
        var bytes = new TestElfWriter().Build();
        switch (kind)
        {
            case "notelf": bytes = "#!/bin/sh\necho hi\n"u8.ToArray(); break;
            case "elf32": bytes[4] = 1; break;
            case "bigendian": bytes[5] = 2; break;
            case "aarch64": bytes[18] = 183; break;
            case "relocatable": bytes[16] = 1; break;
            case "empty": bytes = []; break;
        }
        var path = Path.Combine(_dir.Path, kind);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<UsdtException>(() => UsdtBinary.Open(path));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void MissingFile_IsAUsdtException()
    {
        var e = Assert.Throws<UsdtException>(() => UsdtBinary.Open("/nonexistent/python3.99"));
        Assert.Contains("/nonexistent/python3.99", e.Message);
    }
}
