using System.Buffers.Binary;
using Pyprobe.Usdt.Elf;
using Pyprobe.Usdt.Unwind;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// A sample in a function's epilogue, after it popped rbp: gcc's rows still say rbp is saved at CFA−16, which now lies
/// below the stack pointer (outside any copy of the stack). The unwinder takes rbp as the caller's already and goes on —
/// where it used to stop (1–3% of the samples of a busy 3.12 loop ended after their first frame).
/// </summary>
public class EpilogueTests(ITestOutputHelper output)
{
    private const string LibPython = "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0";

    /// <summary>One file mapped at its link-time addresses.</summary>
    private sealed class OneFile(ElfImage elf) : INativeCodeMap
    {
        private readonly NativeModule _module = new(0, ulong.MaxValue, elf.Path, 0, elf);

        public bool TryLocate(ulong address, out NativeModule module, out ulong vaddr)
        {
            (module, vaddr) = (_module, address);
            return true;
        }

        public bool IsExecutable(ulong address) => elf.LoadSegments.Any(s => s.Executable && s.Contains(address));
    }

    [Fact]
    public void ASampleAfterThePopOfRbpUnwindsOnToItsCaller()
    {
        if (!File.Exists(LibPython))
        {
            TestPythons.Missing(LibPython, output);
            return;
        }
        var elf = ElfImage.Open(LibPython);
        var frames = CallFrameTable.For(elf)!;
        var function = elf.Symbols.First(s => s.Name == "PyIter_Next" && s.IsDefined);
        // The epilogue's last row: only the return address above rsp, rbp's slot below it.
        var ip = Enumerable.Range(0, (int)function.Size).Select(i => function.Value + (ulong)i)
            .First(a => frames.TryFindRow(a, out var r) && r.Cfa == CfaKind.Register && r.CfaRegister == DwarfRegister.Rsp && r.CfaOffset == 8
                && r.Rbp.Kind == RegisterRuleKind.AtCfaOffset);
        var caller = elf.Symbols.First(s => s.Name == "_PyEval_EvalFrameDefault" && s.IsDefined);
        var returnAddress = caller.Value + caller.Size / 2;

        var stack = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(stack, returnAddress);
        const ulong sp = 0x7fff_0000_1000;
        var counters = new ulong[8];
        var stop = NativeUnwinder.Unwind(ip, sp, bp: 0x1234, stack, new OneFile(elf), counters, out var count);
        // Two frames: the caller's row needs more of the stack than these 8 bytes, so the copy ends the walk there.
        Assert.Equal(NativeUnwindStop.OutsideCopy, stop);
        Assert.Equal([ip, returnAddress], counters[..count]);
    }
}
