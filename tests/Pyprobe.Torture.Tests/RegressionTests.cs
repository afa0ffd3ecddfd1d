using System.Buffers.Binary;
using Pyprobe.Usdt;

namespace Pyprobe.Torture.Tests;

/// <summary>Minimal inputs for every bug the torture suite found; each once escaped as a non-UsdtException or a bogus result.</summary>
public class RegressionTests
{
    private static UsdtBinary Open(byte[] f) => UsdtBinary.OpenInMemory("mini.elf", f, f.Length);

    [Fact]
    public void MiniElf_IsValid()
    {
        var b = Open(new MiniElf().Build());
        var site = Assert.Single(Assert.Single(b.Probes).Sites);
        Assert.Equal(0x1010UL, site.FileOffset);
        Assert.Equal(0x2020UL, site.SemaphoreFileOffset);
        Assert.Null(Invariants.CheckBinary(b, new MiniElf().Build().Length));
    }

    // Bug 1: Math.Abs(int.MinValue) threw OverflowException out of the size check.
    [Theory]
    [InlineData("-2147483648@%eax")]
    [InlineData("-2147483648@$1")]
    public void SizeIntMinValue_IsAUsdtArgumentException(string text)
    {
        var e = Assert.Throws<UsdtArgumentException>(() => UsdtArgumentParser.ParseList(text, "p:n"));
        Assert.Equal(text, e.ArgumentText);
        Assert.Contains("size", e.Message);
    }

    // Bug 2: 13+ arguments were accepted, and the code generator later threw
    // ArgumentOutOfRangeException ("at most 12 arguments") instead of a UsdtException at open time.
    [Fact]
    public void ThirteenArguments_AreRejectedNamingTheExtraOne()
    {
        var twelve = string.Join(' ', Enumerable.Range(0, 12).Select(i => $"8@{i * 8}(%rsp)"));
        Assert.Equal(12, UsdtArgumentParser.ParseList(twelve).Count);
        var e = Assert.Throws<UsdtArgumentException>(() => UsdtArgumentParser.ParseList(twelve + " -4@%eax", "p:n"));
        Assert.Equal("-4@%eax", e.ArgumentText);
        Assert.Contains("at most 12", e.Message);

        var f = new MiniElf { Arguments = twelve + " -4@%eax" }.Build();
        Assert.Contains("at most 12", Assert.Throws<UsdtArgumentException>(() => Open(f)).Message);
    }

    // Bug 3: (%rip,%index,scale) has no x86-64 encoding but was accepted as an indexed operand.
    [Fact]
    public void RipAsIndexedBase_IsRejected()
    {
        var e = Assert.Throws<UsdtArgumentException>(() => UsdtArgumentParser.Parse("8@(%rip,%rax,8)", "p:n"));
        Assert.Contains("%rip cannot be the base", e.Message);
        Assert.Throws<UsdtArgumentException>(() => UsdtArgumentParser.Parse("8@16(%eip,%rbx)", "p:n"));
    }

    // Bug 4: a probe in the zero-filled p_memsz tail of its segment got a file offset that is not
    // file data (here past the end of the file), and was handed out as a uprobe offset.
    [Fact]
    public void SiteInMemszTail_IsAClearError()
    {
        var f = new MiniElf().Build();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(MiniElf.TextPhdr + MiniElf.P_filesz), 0x8);   // filesz < site offset 0x10
        var e = Assert.Throws<UsdtException>(() => Open(f));
        Assert.Contains("mini.elf: probe python:gc__start at 0x401010", e.Message);
        Assert.Contains("not backed by data", e.Message);
    }

    // Bug 4b: same for a segment whose p_offset points past the end of the file.
    [Fact]
    public void SiteInSegmentBeyondEndOfFile_IsAClearError()
    {
        var f = new MiniElf().Build();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(MiniElf.TextPhdr + MiniElf.P_offset), 0x100000);
        Assert.Contains("not backed by data", Assert.Throws<UsdtException>(() => Open(f)).Message);
    }

    // Bug 4c: a semaphore (ref_ctr_offset) past the data in the file.
    [Fact]
    public void SemaphoreBeyondFileData_IsAClearError()
    {
        var f = new MiniElf { Semaphore = MiniElf.DataVaddr + 0xfff }.Build(); // 2-byte counter straddles the end of filesz
        var e = Assert.Throws<UsdtException>(() => Open(f));
        Assert.Contains("semaphore of probe python:gc__start", e.Message);
        Assert.Contains("not backed by data", e.Message);
    }

    // Hardening 5: section ranges are checked before the headers are read, which size string/symbol table
    // reads by sh_size. Before, such files failed only with a wrapped EndOfStream/Overflow message
    // that named neither the section nor the problem; now the message does, and reading stays
    // bounded by the file's length.
    [Theory]
    [InlineData(0x7fff_fff0UL)]
    [InlineData(0xffff_ffff_ffff_ff00UL)]
    public void HugeSectionSize_IsRejectedBeforeAllocating(ulong size)
    {
        var w = new MiniElf();
        var f = w.Build();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(w.SectionHeader(2) + 32), size); // .shstrtab sh_size
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<UsdtException>(() => Open(f));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "allocated more than 16 MiB");
        Assert.Contains("mini.elf: section 2", e.Message);
        Assert.Contains("beyond the end of the file", e.Message);
    }

    // Hardening 5b: header table geometry is checked up front too (entry sizes the readers would trust).
    [Theory]
    [InlineData(54, 1, "e_phentsize")]
    [InlineData(58, 1, "e_shentsize")]
    [InlineData(60, 0xffff, "section header table")]
    [InlineData(56, 0xffff, "program header table")]
    public void BadHeaderTableGeometry_IsAClearError(int field, int value, string expected)
    {
        var f = new MiniElf().Build();
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(field), (ushort)value);
        var e = Assert.Throws<UsdtException>(() => Open(f));
        Assert.Contains("mini.elf", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void InMemoryAndDiskOpen_Agree()
    {
        var f = new MiniElf().Build();
        var path = Path.Combine(Path.GetTempPath(), $"pyprobe-torture-{Environment.ProcessId}.elf");
        File.WriteAllBytes(path, f);
        try
        {
            var disk = UsdtBinary.Open(path);
            var mem = Open(f);
            var (d, m) = (disk.Probes.Single().Sites.Single(), mem.Probes.Single().Sites.Single());
            Assert.Equal((d.Address, d.FileOffset, d.SemaphoreAddress, d.SemaphoreFileOffset, d.ArgumentText), (m.Address, m.FileOffset, m.SemaphoreAddress, m.SemaphoreFileOffset, m.ArgumentText));
            Assert.Equal(d.Arguments, m.Arguments);
            Assert.Equal(disk.Elf.ReadSection(disk.Elf.FindSection(".note.stapsdt")!), mem.Elf.ReadSection(mem.Elf.FindSection(".note.stapsdt")!));
        }
        finally { File.Delete(path); }
    }
}
