using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Tests.Runtime;

namespace Pyprobe.Python.Tests.EvalFrame;

/// <summary>
/// Where the code-object memo learns that a code object died: the site found in the file is the function a live
/// process's PyCode_Type.tp_dealloc points at (read from its memory, at id(types.CodeType)), past an endbr64 where the
/// function starts with one; in builds that keep their static symbols, that function is code_dealloc.
/// </summary>
public sealed class CodeDeallocSiteTests
{
    private const string Script = """
        import types, sys
        print(id(types.CodeType), flush=True)
        sys.stdin.readline()
        """;

    public static TheoryData<string> All =>
        ["pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0",
         "debian:3.9", "debian:3.11", "debian:3.13", "debian:3.14", "debian:3.15"];

    [Theory]
    [MemberData(nameof(All))]
    public void The_site_is_where_the_live_type_deallocates(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        using var process = CPythonProcess.Attach(python.Pid);
        var binary = process.Binary;
        var typeAtRun = ulong.Parse(python.ReadyLine);
        var bias = typeAtRun - (binary.Symbols.CodeType ?? throw new Xunit.Sdk.XunitException($"{interpreter}: no PyCode_Type"));
        var dealloc = process.Memory.ReadU64(typeAtRun + 48) - bias;

        var site = CodeDeallocSite.Find(binary) ?? throw new Xunit.Sdk.XunitException($"{interpreter}: no tp_dealloc site found in {binary.DisplayPath}");
        var startsWithEndbr = binary.Elf.ReadVirtual(dealloc, 4).AsSpan().SequenceEqual(new byte[] { 0xf3, 0x0f, 0x1e, 0xfa });
        Assert.Equal(dealloc + (startsWithEndbr ? 4UL : 0), site);
        if (binary.Elf.FindSymbols("code_dealloc").FirstOrDefault(s => s.IsFunction && s.IsDefined) is { } symbol)
            Assert.Equal(symbol.Value, dealloc);
        else
            Assert.StartsWith("debian:", interpreter); // only Debian's stripped builds lack it
    }
}
