using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;

namespace Pyprobe.LaunchOrder;

/// <summary>
/// When each of a binary's functions is first called, in any process running it: one uprobe_multi link over every
/// function's entry, whose cookie is the function's index, and a program that stores the kernel's clock in that index's
/// slot of an array the first time. Every run of the binary pays a trap per call while this is attached.
/// </summary>
internal sealed class FirstCallRecorder : IDisposable
{
    private readonly BpfMap _firstCalls;
    private readonly BpfProgram _program;
    private readonly UprobeMultiLink _link;
    private readonly int _count;

    public FirstCallRecorder(string binary, IReadOnlyList<ulong> fileOffsets)
    {
        _count = fileOffsets.Count;
        _firstCalls = BpfMap.Create(MapSpec.Array("first_calls", 8, (uint)_count));
        const short keySlot = -4;
        var code = new InstructionBuilder()
            .Call(HelperFunction.GetAttachCookie)
            .StoreMem(MemorySize.Word, Register.FramePointer, keySlot, Register.R0)
            .LoadMapFd(Register.R1, _firstCalls.Fd.Value)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, keySlot)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, "out")
            .Mov64(Register.R6, Register.R0)
            .Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, Register.R6, 0, Register.R0)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit()
            .Assemble();
        _program = BpfProgram.Load(new ProgramSpec("first_calls", ProgramType.Kprobe, code.Bytecode, AttachType.TraceUprobeMulti));
        _link = UprobeMultiLink.Attach(_program, binary, fileOffsets.Select((offset, i) => new UprobeSite(offset, 0, (ulong)i)).ToList());
    }

    /// <summary>The indexes of the functions called so far, earliest first call first.</summary>
    public IReadOnlyList<int> CalledInOrder()
    {
        var value = new byte[8];
        var called = new List<(ulong At, int Index)>();
        for (var i = 0; i < _count; i++)
            if (_firstCalls.TryLookup(BitConverter.GetBytes(i), value) && BitConverter.ToUInt64(value) is var at and not 0)
                called.Add((at, i));
        return called.OrderBy(c => c.At).Select(c => c.Index).ToList();
    }

    public void Dispose()
    {
        _link.Dispose();
        _program.Dispose();
        _firstCalls.Dispose();
    }
}
