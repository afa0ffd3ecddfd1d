using System.Diagnostics;
using Pyprobe.Usdt.Elf;
using Pyprobe.Usdt.Unwind;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// A stripped file's static functions named from where distributions keep their names, made here with the tools they
/// use: a separate debug file (<c>objcopy --only-keep-debug</c> + <c>--add-gnu-debuglink</c>), found beside the file or
/// by build id under a debug root; and a MiniDebugInfo (Fedora's recipe: the static function symbols, xz-compressed, in
/// <c>.gnu_debugdata</c>). <c>middle</c> is the chain's static function, unnamed in the stripped file alone.
/// </summary>
public class DebugSymbolFileTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static readonly string[] Chain = ["inner", "middle", "outer", "main"];

    private string? Build(string name)
    {
        foreach (var tool in new[] { "objcopy", "strip", "nm", "xz" })
            if (!File.Exists($"/usr/bin/{tool}"))
            {
                TestPythons.Missing(tool, output);
                return null;
            }
        return UnwindChainProgram.Compile(_dir.Path, name, output, "-O2", "-rdynamic");
    }

    private void Shell(string script)
    {
        using var bash = Process.Start(new ProcessStartInfo("/bin/bash", ["-euo", "pipefail", "-c", script])
        {
            WorkingDirectory = _dir.Path,
            RedirectStandardError = true,
        })!;
        var errors = bash.StandardError.ReadToEnd();
        bash.WaitForExit();
        Assert.True(bash.ExitCode == 0, $"{script}\n{errors}");
    }

    /// <summary>The name each chain function gets in <paramref name="elf"/>, looked up one byte into it (addresses from the unstripped build).</summary>
    private static List<string?> Names(ElfImage unstripped, ElfImage elf) =>
        Chain.Select(name => NativeSymbolizer.FunctionName(elf,
            unstripped.FindSymbols(name).Single(s => s.Table == ElfSymbolTableKind.Symtab).Value + 1)).ToList();

    private static List<string?> StrippedAlone => ["inner", null, "outer", "main"];

    [Fact]
    public void MiniDebugInfo_NamesTheStaticFunctions()
    {
        if (Build("mini") is not { } exe) return;
        Shell("""
            cp mini mini.stripped && strip --strip-all mini.stripped
            nm -D mini --format=posix --defined-only | awk '{print $1}' | sort > dynsyms
            nm mini --format=posix --defined-only | awk '$2 == "T" || $2 == "t" {print $1}' | sort > funcsyms
            comm -13 dynsyms funcsyms > keep
            objcopy --only-keep-debug mini mini.keep
            objcopy -S --remove-section .gdb_index --remove-section .comment --keep-symbols=keep mini.keep debugdata
            xz -f debugdata
            objcopy --add-section .gnu_debugdata=debugdata.xz mini.stripped
            """);
        var stripped = ElfImage.Open(exe + ".stripped");
        Assert.Null(stripped.FindSection(".symtab"));
        Assert.NotNull(stripped.FindSection(".gnu_debugdata"));
        Assert.Equal(Chain, Names(ElfImage.Open(exe), stripped));
    }

    [Fact]
    public void DamagedMiniDebugInfo_NamesTheExportsAsBefore()
    {
        if (Build("damaged") is not { } exe) return;
        Shell("""
            cp damaged damaged.stripped && strip --strip-all damaged.stripped
            head -c 600 /dev/urandom > junk
            printf '\3757zXZ\0' | cat - junk > junk.xz
            objcopy --add-section .gnu_debugdata=junk.xz damaged.stripped
            """);
        Assert.Equal(StrippedAlone, Names(ElfImage.Open(exe), ElfImage.Open(exe + ".stripped")));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".debug/")]
    public void DebugLink_FindsTheDebugFileBesideTheFile(string subdirectory)
    {
        if (Build("linked") is not { } exe) return;
        Shell($"""
            objcopy --only-keep-debug linked linked.debug
            cp linked linked.stripped && strip --strip-all linked.stripped
            objcopy --add-gnu-debuglink=linked.debug linked.stripped
            if [ -n "{subdirectory}" ]; then mkdir -p {subdirectory} && mv linked.debug {subdirectory}linked.debug; fi
            """);
        Assert.Equal(Chain, Names(ElfImage.Open(exe), ElfImage.Open(exe + ".stripped")));
    }

    [Fact]
    public void DebugFileOfAnotherBuild_IsNotUsed()
    {
        if (Build("linked") is not { } exe) return;
        // The same source built again with other flags: another build id, other addresses.
        if (UnwindChainProgram.Compile(_dir.Path, "other", output, "-O1", "-rdynamic") is null) return;
        Shell("""
            objcopy --only-keep-debug other linked.debug
            cp linked linked.stripped && strip --strip-all linked.stripped
            objcopy --add-gnu-debuglink=linked.debug linked.stripped 2>/dev/null || objcopy --add-gnu-debuglink=other linked.stripped
            """);
        Assert.Equal(StrippedAlone, Names(ElfImage.Open(exe), ElfImage.Open(exe + ".stripped")));
    }

    [Fact]
    public void BuildId_FindsTheDebugFileUnderTheDebugRoot()
    {
        if (Build("byid") is not { } exe) return;
        var id = Convert.ToHexStringLower(BuildIdOf(exe));
        Shell($"""
            mkdir -p root/.build-id/{id[..2]}
            objcopy --only-keep-debug byid root/.build-id/{id[..2]}/{id[2..]}.debug
            cp byid byid.stripped && strip --strip-all byid.stripped
            """);
        var stripped = ElfImage.Open(exe + ".stripped");
        var debug = DebugSymbolFiles.SeparateDebugFile(stripped, Path.Combine(_dir.Path, "root"));
        Assert.NotNull(debug);
        Assert.Equal(Path.Combine(_dir.Path, "root", ".build-id", id[..2], id[2..] + ".debug"), debug.Path);
        Assert.Null(DebugSymbolFiles.SeparateDebugFile(stripped, Path.Combine(_dir.Path, "elsewhere")));
    }

    private static byte[] BuildIdOf(string path)
    {
        using var readelf = Process.Start(new ProcessStartInfo("readelf", ["-n", path]) { RedirectStandardOutput = true })!;
        var line = readelf.StandardOutput.ReadToEnd().Split('\n').Single(l => l.Contains("Build ID:", StringComparison.Ordinal));
        readelf.WaitForExit();
        return Convert.FromHexString(line.Split("Build ID:")[1].Trim());
    }
}
