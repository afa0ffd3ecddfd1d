using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Btf;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// bpf_loop with a callback: the program takes the callback's address (lddw BPF_PSEUDO_FUNC), so it loads with
/// func_info naming its functions in pyprobe's own BTF (FunctionBtf); the kernel runs the callback once per round.
/// An XDP program run by BPF_PROG_TEST_RUN sums the rounds' indexes into a map: 0 + 1 + … + 99.
/// </summary>
public unsafe class BpfLoopTests
{

    [Fact]
    public void TheCallbackRunsOncePerRound()
    {
        KernelRequirement.EnsureRoot();
        Assert.True(KernelFeatures.HasBpfLoop, "bpf_loop with a callback did not load (kernel 5.17+ has it)");
        using var result = BpfMap.Create(MapSpec.Array("t_loopsum", 8, 1));
        var code = new InstructionBuilder();
        var sum = code.Stack.Allocate(8, "sum");
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, sum, 0)
            .Mov64(Register.R1, 100)
            .LoadFunction(Register.R2, "add_index")
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, sum)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.Loop)
            .LoadMapValue(Register.R1, result.Fd.Value, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, sum)
            .StoreMem(MemorySize.DoubleWord, Register.R1, 0, Register.R2)
            .Mov64(Register.R0, 2)
            .Exit()
            .Subprogram("add_index", round => round
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.R2, 0)
                .Add64(Register.R3, Register.R1)
                .StoreMem(MemorySize.DoubleWord, Register.R2, 0, Register.R3)
                .Mov64(Register.R0, 0)
                .Exit());
        var bytecode = code.Assemble().Bytecode;

        var records = FunctionInfo.For(bytecode) ?? throw new Xunit.Sdk.XunitException("no func_info for a program that takes a function's address");
        Assert.Equal(2 * FunctionInfo.RecordSize, records.Length);
        Assert.Equal((0u, FunctionBtf.ProgramFunction), (BinaryPrimitives.ReadUInt32LittleEndian(records), BinaryPrimitives.ReadUInt32LittleEndian(records.AsSpan(4))));
        Assert.Equal(FunctionBtf.CallbackFunction, BinaryPrimitives.ReadUInt32LittleEndian(records.AsSpan(12)));

        using var program = BpfProgram.Load(new ProgramSpec("t_loop", XdpTestRun.Type, bytecode));
        XdpTestRun.Run(program.Fd.Value);
        var total = new byte[8];
        Assert.True(result.TryLookup(new byte[4], total));
        Assert.Equal(4950UL, BinaryPrimitives.ReadUInt64LittleEndian(total));
    }

    [Fact]
    public void ProgramsWithoutCallbacksLoadWithoutBtf()
    {
        var bytecode = new InstructionBuilder().Mov64(Register.R0, 0).Exit().Assemble().Bytecode;
        Assert.Null(FunctionInfo.For(bytecode));
    }
}
