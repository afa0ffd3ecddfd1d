using Pyprobe.Usdt.Elf;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// A file with a .symtab is looked up through pyprobe's own index of both tables' raw entries: every name must find
/// exactly the entries a scan of the tables finds, in the same order, and names it lacks nothing. Checked on pyenv's
/// libpython (17,400 names, many sharing long prefixes and suffixes).
/// </summary>
public class SymbolIndexLookupTests(ITestOutputHelper output)
{
    private const string PyenvLibpython = "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0";

    [Fact]
    public void EveryNameOfALibpythonFindsWhatAScanFinds()
    {
        if (!File.Exists(PyenvLibpython))
        {
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", $"{PyenvLibpython} is missing");
            return;
        }
        var elf = ElfImage.Open(PyenvLibpython);
        Assert.True(elf.FindSection(".symtab") is not null, $"{PyenvLibpython} has no .symtab");
        var scanned = elf.Symbols.GroupBy(s => s.Name).ToList();
        Assert.True(scanned.Count > 10_000, $"only {scanned.Count} names");
        foreach (var name in scanned) Assert.Equal(name.ToList(), elf.FindSymbols(name.Key));
        foreach (var absent in new[] { "pyprobe_no_such_symbol", "Py_NoSuchFunction", "_PyEval_EvalFrameDefaul", "PyEval_EvalFrameDefault", "_", "" })
            Assert.Empty(elf.FindSymbols(absent));
        output.WriteLine($"{scanned.Count} names found as a scan finds them");
    }
}
