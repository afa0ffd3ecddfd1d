using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>The kallsyms reader on a file of kallsyms' own format, and on the running kernel's.</summary>
public class KernelSymbolsTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TextSymbols_NameTheAddressesFromTheirStartUpToTheNext()
    {
        var path = Path.Combine(_dir.Path, "kallsyms");
        File.WriteAllText(path, """
            ffffffff81000000 T _stext
            ffffffff81000100 t pipe_read
            ffffffff81000200 D some_data
            ffffffff81000300 T vfs_read
            0000000000000000 T hidden
            ffffffffc0201000 t ext4_file_read_iter	[ext4]
            ffffffff81000050 W weak_one

            """);
        var symbols = KernelSymbols.Read(path);
        Assert.Equal(5, symbols.Count); // the data symbol and the hidden (zero) address left out
        Assert.Null(symbols.Find(0xffffffff80ffffff));
        Assert.Equal(("_stext", "kernel"), symbols.Find(0xffffffff81000000));
        Assert.Equal(("weak_one", "kernel"), symbols.Find(0xffffffff81000060));
        Assert.Equal(("pipe_read", "kernel"), symbols.Find(0xffffffff81000250)); // past the data symbol: still pipe_read's
        Assert.Equal(("vfs_read", "kernel"), symbols.Find(0xffffffff81000300));
        Assert.Equal(("ext4_file_read_iter", "ext4"), symbols.Find(0xffffffffc0201010));
    }

    [Fact]
    public void RunningKernel_NamesItsOwnFunctions()
    {
        var symbols = KernelSymbols.Read("/proc/kallsyms");
        Assert.True(symbols.Count > 10_000, $"{symbols.Count} symbols");
        var line = File.ReadLines("/proc/kallsyms").First(l => l.EndsWith(" T do_syscall_64", StringComparison.Ordinal));
        var address = Convert.ToUInt64(line[..16], 16);
        Assert.Equal(("do_syscall_64", "kernel"), symbols.Find(address + 1));
    }

    [Fact]
    public void Unreadable_NamesNothing() => Assert.Null(KernelSymbols.Read("/nonexistent/kallsyms").Find(0xffffffff81000000));
}
