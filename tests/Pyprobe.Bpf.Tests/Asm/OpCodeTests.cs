using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Tests.Asm;

/// <summary>Opcode composition against the table in notes/kernel-bpf.md §4.8 and the UAPI constants.</summary>
public sealed class OpCodeTests
{
    [Theory]
    [InlineData(InstructionClass.Alu64, AluOperation.Move, SourceOperand.Immediate, 0xb7)]
    [InlineData(InstructionClass.Alu64, AluOperation.Move, SourceOperand.Register, 0xbf)]
    [InlineData(InstructionClass.Alu32, AluOperation.Move, SourceOperand.Immediate, 0xb4)]
    [InlineData(InstructionClass.Alu64, AluOperation.Add, SourceOperand.Immediate, 0x07)]
    [InlineData(InstructionClass.Alu64, AluOperation.Add, SourceOperand.Register, 0x0f)]
    [InlineData(InstructionClass.Alu64, AluOperation.And, SourceOperand.Immediate, 0x57)]
    [InlineData(InstructionClass.Alu64, AluOperation.LeftShift, SourceOperand.Immediate, 0x67)]
    [InlineData(InstructionClass.Alu64, AluOperation.RightShift, SourceOperand.Immediate, 0x77)]
    [InlineData(InstructionClass.Alu64, AluOperation.ArithmeticRightShift, SourceOperand.Immediate, 0xc7)]
    public void AluOpcodes(InstructionClass aluClass, AluOperation operation, SourceOperand source, byte expected)
    {
        var op = OpCode.Alu(aluClass, operation, source);

        Assert.Equal(expected, op.Value);
        Assert.Equal(aluClass, op.Class);
        Assert.Equal(operation, op.AluOperation);
        Assert.Equal(source, op.Source);
    }

    [Theory]
    [InlineData(InstructionClass.Jump, JumpOperation.Always, SourceOperand.Immediate, 0x05)]
    [InlineData(InstructionClass.Jump, JumpOperation.Equal, SourceOperand.Immediate, 0x15)]
    [InlineData(InstructionClass.Jump, JumpOperation.NotEqual, SourceOperand.Immediate, 0x55)]
    [InlineData(InstructionClass.Jump, JumpOperation.Equal, SourceOperand.Register, 0x1d)]
    [InlineData(InstructionClass.Jump, JumpOperation.Greater, SourceOperand.Immediate, 0x25)]
    [InlineData(InstructionClass.Jump, JumpOperation.SignedGreater, SourceOperand.Immediate, 0x65)]
    [InlineData(InstructionClass.Jump, JumpOperation.Call, SourceOperand.Immediate, 0x85)]
    [InlineData(InstructionClass.Jump, JumpOperation.Exit, SourceOperand.Immediate, 0x95)]
    [InlineData(InstructionClass.Jump32, JumpOperation.Equal, SourceOperand.Immediate, 0x16)]
    public void JumpOpcodes(InstructionClass jumpClass, JumpOperation operation, SourceOperand source, byte expected)
    {
        var op = OpCode.Jump(jumpClass, operation, source);

        Assert.Equal(expected, op.Value);
        Assert.Equal(operation, op.JumpOperation);
    }

    [Theory]
    [InlineData(InstructionClass.LoadFromMemory, MemorySize.DoubleWord, 0x79)]
    [InlineData(InstructionClass.LoadFromMemory, MemorySize.Word, 0x61)]
    [InlineData(InstructionClass.LoadFromMemory, MemorySize.HalfWord, 0x69)]
    [InlineData(InstructionClass.LoadFromMemory, MemorySize.Byte, 0x71)]
    [InlineData(InstructionClass.StoreFromRegister, MemorySize.DoubleWord, 0x7b)]
    [InlineData(InstructionClass.StoreFromRegister, MemorySize.Word, 0x63)]
    [InlineData(InstructionClass.StoreImmediate, MemorySize.DoubleWord, 0x7a)]
    [InlineData(InstructionClass.StoreImmediate, MemorySize.Word, 0x62)]
    public void MemoryOpcodes(InstructionClass memoryClass, MemorySize size, byte expected)
    {
        var op = OpCode.Memory(memoryClass, MemoryMode.Memory, size);

        Assert.Equal(expected, op.Value);
        Assert.Equal(size, op.Size);
        Assert.Equal(MemoryMode.Memory, op.Mode);
    }

    [Fact]
    public void LddwIsTheOnlyTwoSlotOpcode()
    {
        Assert.Equal(0x18, OpCode.LoadImmediate64.Value);
        Assert.Equal(2, OpCode.LoadImmediate64.Width);
        for (var value = 0; value <= 0xff; value++)
        {
            Assert.Equal(value == 0x18 ? 2 : 1, new OpCode((byte)value).Width);
        }
    }

    [Fact]
    public void FactoriesRejectTheWrongClass()
    {
        Assert.Throws<ArgumentException>(() => OpCode.Alu(InstructionClass.Jump, AluOperation.Add, SourceOperand.Immediate));
        Assert.Throws<ArgumentException>(() => OpCode.Jump(InstructionClass.Alu64, JumpOperation.Equal, SourceOperand.Immediate));
        Assert.Throws<ArgumentException>(() => OpCode.Memory(InstructionClass.Alu64, MemoryMode.Memory, MemorySize.Byte));
    }

    [Fact]
    public void FramePointerIsR10AndPseudoSourcesMatchUapi()
    {
        Assert.Equal(Register.R10, Register.FramePointer);
        Assert.Equal(10, (int)Register.FramePointer);
        Assert.Equal(1, (int)PseudoSource.MapFd);
        Assert.Equal(2, (int)PseudoSource.MapValue);
        Assert.Equal(1, (int)PseudoSource.BpfFunctionCall);
    }

    [Fact]
    public void JumpConditionsShareJumpOperationBits()
    {
        Assert.Equal(0x10, (int)JumpCondition.Equal);
        Assert.Equal(0x40, (int)JumpCondition.BitsSet);
        Assert.Equal(0xa0, (int)JumpCondition.Less);
        Assert.Equal(0xd0, (int)JumpCondition.SignedLessOrEqual);
    }
}
