using Iced.Intel;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Tests.Runtime;

namespace Pyprobe.Python.Tests.EvalFrame;

/// <summary>
/// _PyEval_EvalFrameDefault's sites are found once per binary, by whichever asks first (the thread a resolve starts
/// ahead, the exec follower, the attach): every later ask for the process, from any thread, gets those sites; and they
/// are what the probes need: the entry at the function (past an endbr64) and every ret.
/// </summary>
public sealed class EvalFrameSitesTests
{
    private const string Script = """
        import sys
        print("ready", flush=True)
        sys.stdin.readline()
        """;

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.13")]
    public void Sites_found_ahead_are_the_ones_every_attach_of_the_file_gets(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        using var one = CPythonProcess.Attach(python.Pid);
        EvalFrameSites.FindAhead(one.Binary);
        var sites = EvalFrameSites.Find(one.Binary);
        using var other = CPythonProcess.Attach(python.Pid);
        Assert.Same(one.Binary, other.Binary);
        Assert.Same(sites, EvalFrameSites.Find(other.Binary));

        var elf = one.Binary.Elf;
        var symbol = elf.FindSymbols("_PyEval_EvalFrameDefault").First(s => s.IsFunction && s.IsDefined && s.Size > 0);
        Assert.Equal(symbol.Value, sites.Function);
        var startsWithEndbr = elf.ReadVirtual(symbol.Value, 4).AsSpan().SequenceEqual(new byte[] { 0xf3, 0x0f, 0x1e, 0xfa });
        Assert.Equal(symbol.Value + (startsWithEndbr ? 4UL : 0), sites.Entry);
        Assert.NotEmpty(sites.Returns);
        foreach (var ret in sites.Returns)
        {
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(elf.ReadVirtual(ret, 16)), ret);
            decoder.Decode(out var instruction);
            Assert.True(instruction.FlowControl == FlowControl.Return, $"0x{ret:x} is {instruction}, not a ret");
        }
    }
}
