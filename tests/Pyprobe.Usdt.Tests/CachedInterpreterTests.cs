using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// The Debian interpreters cached by scripts/fetch-pythons.sh (cpython.md §1.2 probe table):
/// 3.9 has all 8 probes; 3.13/3.14 lack function/line probes; 3.15 has function probes back,
/// no line probe, and 2 sites per import probe.
/// </summary>
public class CachedInterpreterTests(ITestOutputHelper output)
{
    // version, expected "name×sites" list (sorted by name)
    public static TheoryData<string, string> Expected => new()
    {
        { "3.9", "audit×1 function__entry×1 function__return×1 gc__done×1 gc__start×1 import__find__load__done×1 import__find__load__start×1 line×1" },
        { "3.11", "audit×1 function__entry×1 function__return×1 gc__done×1 gc__start×1 import__find__load__done×1 import__find__load__start×1 line×1" },
        { "3.13", "audit×1 gc__done×1 gc__start×1 import__find__load__done×1 import__find__load__start×1" },
        { "3.14", "audit×5 gc__done×1 gc__start×1 import__find__load__done×1 import__find__load__start×1" },
        { "3.15", "audit×4 function__entry×1 function__return×1 gc__done×1 gc__start×1 import__find__load__done×2 import__find__load__start×2" },
    };

    [Theory]
    [MemberData(nameof(Expected))]
    public void Executable_HasTheProbesOfItsVersion_AndMatchesReadelf(string version, string expected)
    {
        if (TestPythons.Get(version, output) is not { } py) return;
        var b = UsdtBinary.Open(py.BinaryPath);
        Assert.Equal(expected, string.Join(' ', b.Probes.Select(p => $"{p.Name}×{p.Sites.Count}")));
        Assert.All(b.Probes, p => Assert.Equal("python", p.Provider));
        Assert.All(b.Probes.SelectMany(p => p.Sites), s => Assert.True(s.HasSemaphore));
        Readelf.AssertMatches(b, py.BinaryPath);
        output.WriteLine($"{py.BinaryPath}: {expected}");
    }

    [Theory]
    [MemberData(nameof(Expected))]
    public void LibPython_HasTheSameProbeNames_AndMatchesReadelf(string version, string expected)
    {
        if (TestPythons.Get(version, output) is not { } py) return;
        if (py.LibPythonPath is null || !File.Exists(py.LibPythonPath))
        {
            TestPythons.Missing($"libpython for {version}", output);
            return;
        }
        var b = UsdtBinary.Open(py.LibPythonPath);
        Assert.Equal(expected.Split(' ').Select(x => x.Split('×')[0]), b.Probes.Select(p => p.Name));
        Readelf.AssertMatches(b, py.LibPythonPath);
    }

    [Fact]
    public void Python315_FunctionEntryArgumentsAndTwoImportSites()
    {
        if (TestPythons.Get("3.15", output) is not { } py) return;
        var b = UsdtBinary.Open(py.BinaryPath);
        var entry = Assert.Single(b.FindProbe("python", "function__entry")!.Sites);
        Assert.Equal(3, entry.Arguments.Count);
        Assert.Equal(2, b.FindProbe("python", "import__find__load__start")!.Sites.Select(s => s.Address).Distinct().Count());
        Assert.Null(b.FindProbe("python", "line"));
    }

    [Fact]
    public void EveryArgumentOfEveryCachedBinaryParses()
    {
        int files = 0, args = 0;
        foreach (var py in TestPythons.All())
            foreach (var path in new[] { py.BinaryPath, py.LibPythonPath })
            {
                if (path is null || !File.Exists(path)) continue;
                var b = UsdtBinary.Open(path);
                files++;
                args += b.Probes.SelectMany(p => p.Sites).Sum(s => s.Arguments.Count);
                output.WriteLine($"{path}: {string.Join(", ", b.Probes.SelectMany(p => p.Sites.Select(s => $"{p.Name}[{s.ArgumentText}]")).Distinct())}");
            }
        if (files == 0) TestPythons.Missing("pythons.tsv cache", output);
        output.WriteLine($"{files} files, {args} arguments");
    }
}
