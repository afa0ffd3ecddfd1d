using Pyprobe.Usdt.Elf;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// A file whose only symbol table is .dynsym is looked up through its GNU hash table (.gnu.hash) rather than an index of
/// every name: every name of the table must find exactly the entries a scan of the whole table finds, in the same order,
/// and names it lacks nothing. Checked on libc and on Debian's stripped interpreters.
/// </summary>
public class GnuHashLookupTests(ITestOutputHelper output)
{
    public static TheoryData<string> Files => new() { "libc", "3.9", "3.11", "3.13", "3.15" };

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryNameFindsWhatAScanOfTheTableFinds(string file)
    {
        string path;
        if (file == "libc") path = "/lib/x86_64-linux-gnu/libc.so.6";
        else if (TestPythons.Get(file, output) is { } py) path = py.BinaryPath;
        else return;
        var elf = ElfImage.Open(path);
        Assert.True(elf.FindSection(".gnu.hash") is not null && elf.FindSection(".symtab") is null, $"{path} is not a stripped file with a GNU hash table");

        var scanned = elf.Symbols.GroupBy(s => s.Name).ToList();
        Assert.True(scanned.Count > 500, $"{path}: only {scanned.Count} names");
        foreach (var name in scanned)
        {
            Assert.Equal(name.ToList(), elf.FindSymbols(name.Key));
            Assert.True(elf.MayDefineSymbol(name.Key), name.Key);
        }
        var defined = scanned.SelectMany(g => g).Count(s => s.IsDefined);
        var undefined = scanned.SelectMany(g => g).Count(s => !s.IsDefined);
        foreach (var absent in new[] { "pyprobe_no_such_symbol", "Py_NoSuchFunction", "mallocx", "_", "" })
        {
            Assert.Empty(elf.FindSymbols(absent));
            if (absent.Length > 0) Assert.False(elf.MayDefineSymbol(absent), absent);
        }
        output.WriteLine($"{path}: {scanned.Count} names ({defined} defined entries, {undefined} undefined) found as a scan finds them");
    }
}
