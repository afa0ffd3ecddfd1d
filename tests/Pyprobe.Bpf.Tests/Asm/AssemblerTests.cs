using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Tests.Asm;

public sealed class AssemblerTests
{
    private static short OffsetAtSlot(AssembledProgram program, int slot) => BitConverter.ToInt16(program.Bytecode, slot * 8 + 2);

    [Fact]
    public void ForwardJumpOverLddwCountsTwoSlots()
    {
        var program = new InstructionBuilder()
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out") // slot 0
            .LoadImm64(Register.R1, 1)                          // slots 1-2
            .Mov64(Register.R0, 1)                              // slot 3
            .Label("out")
            .Exit()                                             // slot 4
            .Assemble();

        Assert.Equal(5, program.SlotCount);
        Assert.Equal(40, program.Bytecode.Length);
        Assert.Equal("15 00 03 00 00 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(0, 8)));
        Assert.Equal(4, program.SymbolSlots["out"]);
    }

    [Fact]
    public void BackwardJumpGetsNegativeOffset()
    {
        var program = new InstructionBuilder()
            .Mov64(Register.R1, 0)
            .Label("top")
            .Add64(Register.R1, 1)                                 // slot 1
            .JumpIf(JumpCondition.Less, Register.R1, 10, "top")    // slot 2: 1 - 3 = -2
            .Mov64(Register.R0, 0)
            .Exit()
            .Assemble();

        Assert.Equal("a5 01 fe ff 0a 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(16, 8)));
    }

    [Fact]
    public void BackwardJumpOverLddwCountsTwoSlots()
    {
        var program = new InstructionBuilder()
            .Label("top")
            .LoadImm64(Register.R1, -1) // slots 0-1
            .Jump("top")                // slot 2: 0 - 3 = -3
            .Assemble();

        Assert.Equal(-3, OffsetAtSlot(program, 2));
        Assert.Equal("05 00 fd ff 00 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(16, 8)));
    }

    [Fact]
    public void JumpToTheNextInstructionHasOffsetZero()
    {
        var program = new InstructionBuilder()
            .Jump("next")
            .Label("next")
            .Exit()
            .Assemble();

        Assert.Equal(0, OffsetAtSlot(program, 0));
    }

    [Fact]
    public void RegisterAndThirtyTwoBitJumpsResolveToo()
    {
        var program = new InstructionBuilder()
            .JumpIf(JumpCondition.Equal, Register.R1, Register.R2, "a")
            .JumpIf32(JumpCondition.Equal, Register.R1, 3, "a")
            .JumpIf32(JumpCondition.SignedLess, Register.R1, Register.R4, "a")
            .Label("a")
            .Exit()
            .Assemble();

        Assert.Equal("1d 21 02 00 00 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(0, 8)));
        Assert.Equal("16 01 01 00 03 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(8, 8)));
        Assert.Equal("ce 41 00 00 00 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(16, 8)));
    }

    [Fact]
    public void LocalFunctionCallPutsOffsetInImmediate()
    {
        var program = new InstructionBuilder()
            .CallFunction("sub") // slot 0, src = 1
            .Exit()              // slot 1
            .Label("sub")
            .Mov64(Register.R0, 0) // slot 2
            .Exit()
            .Assemble();

        Assert.Equal("85 10 00 00 01 00 00 00", Bytes.Hex(program.Bytecode.AsSpan(0, 8)));
    }

    [Fact]
    public void BuilderKeepsUnresolvedPlaceholdersAndAssembleDoesNotMutateThem()
    {
        var builder = new InstructionBuilder().Jump("end").Label("end").Exit();

        builder.Assemble();

        Assert.Equal(-1, builder.Instructions[0].Offset);
        Assert.Equal("end", builder.Instructions[0].Reference);
        Assert.Equal("end", builder.Instructions[1].Symbol);
        Assert.Equal(2, builder.SlotCount);
    }

    [Fact]
    public void UndefinedLabelIsReported()
    {
        var builder = new InstructionBuilder().Jump("nowhere").Exit();

        var e = Assert.Throws<AssemblerException>(builder.Assemble);
        Assert.Contains("undefined label 'nowhere'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateLabelIsReportedWhenDefined()
    {
        var builder = new InstructionBuilder().Label("x").Exit();

        var e = Assert.Throws<AssemblerException>(() => builder.Label("x"));
        Assert.Contains("Duplicate label 'x'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateSymbolInARawInstructionListIsReported()
    {
        var exit = new Instruction(OpCode.Jump(InstructionClass.Jump, JumpOperation.Exit, SourceOperand.Immediate), Register.R0, Register.R0, 0, 0);

        var e = Assert.Throws<AssemblerException>(() => Assembler.Assemble([exit.WithSymbol("a"), exit.WithSymbol("a")]));
        Assert.Contains("Duplicate label 'a'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LabelAtTheEndWithNoInstructionIsReported()
    {
        var builder = new InstructionBuilder().Exit().Label("end");

        var e = Assert.Throws<AssemblerException>(builder.Assemble);
        Assert.Contains("'end'", e.Message, StringComparison.Ordinal);
        Assert.Contains("no instruction after it", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TwoLabelsOnTheSameInstructionBothResolveToIt()
    {
        // A fragment's exit label and its caller's next label may name one instruction.
        var program = new InstructionBuilder()
            .Jump("a").Jump("b")
            .Label("a").Label("b")
            .Mov64(Register.R0, 0).Exit()
            .Assemble();

        Assert.Equal(1, program.Bytecode[2]);  // ja +1 (to slot 2)
        Assert.Equal(0, program.Bytecode[10]); // ja +0 (to slot 2)
        Assert.Throws<AssemblerException>(() => new InstructionBuilder().Label("a").Label("a"));
    }

    [Fact]
    public void InvalidLabelNamesAreRejected()
    {
        var builder = new InstructionBuilder();

        Assert.Throws<ArgumentException>(() => builder.Label(" "));
        Assert.Throws<ArgumentException>(() => builder.Jump(""));
    }

    [Fact]
    public void LargestForwardOffsetFitsAndOneMoreIsReported()
    {
        Assert.Equal(short.MaxValue, OffsetAtSlot(ForwardJumpOver(short.MaxValue).Assemble(), 0));

        var e = Assert.Throws<AssemblerException>(ForwardJumpOver(short.MaxValue + 1).Assemble);
        Assert.Contains("32768", e.Message, StringComparison.Ordinal);
        Assert.Contains("16-bit range", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BackwardOffsetOutOfRangeIsReported()
    {
        // 16384 lddw = 32768 slots, then the jump back needs -32769.
        var builder = new InstructionBuilder().Label("top");
        for (var i = 0; i < 16384; i++)
        {
            builder.LoadImm64(Register.R1, i);
        }

        builder.Jump("top");

        var e = Assert.Throws<AssemblerException>(builder.Assemble);
        Assert.Contains("-32769", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReferenceOnANonJumpIsReported()
    {
        var mov = new Instruction(OpCode.Alu(InstructionClass.Alu64, AluOperation.Move, SourceOperand.Immediate), Register.R0, Register.R0, 0, 0);

        var e = Assert.Throws<AssemblerException>(() => Assembler.Assemble([mov.WithReference("x").WithSymbol("x")]));
        Assert.Contains("not a jump", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyProgramIsReported() =>
        Assert.Throws<AssemblerException>(new InstructionBuilder().Assemble);

    private static InstructionBuilder ForwardJumpOver(int filler)
    {
        var builder = new InstructionBuilder().Jump("far");
        for (var i = 0; i < filler; i++)
        {
            builder.Mov64(Register.R0, 0);
        }

        return builder.Label("far").Exit();
    }
}

public class AtomicEncodingTests
{
    [Fact]
    public void AtomicAddMatchesLlvmEncoding()
    {
        // llvm-mc -triple=bpfel -show-encoding: lock *(u64 *)(r8 + 8) += r1
        var bytes = new InstructionBuilder().AtomicAdd64(Register.R8, 8, Register.R1).Exit().Assemble().Bytecode;
        Assert.Equal(new byte[] { 0xdb, 0x18, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00 }, bytes[..8]);
    }
}
