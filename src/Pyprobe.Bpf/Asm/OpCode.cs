namespace Pyprobe.Bpf.Asm;

/// <summary>
/// The 8-bit eBPF opcode, with factories that compose it from its named pieces and accessors that take it apart.
/// </summary>
/// <remarks>
/// Layout: the low three bits are always the <see cref="InstructionClass"/>. For ALU and jump classes the rest is
/// operation (bits 4–7) and <see cref="SourceOperand"/> (bit 3); for load/store classes it is
/// <see cref="MemoryMode"/> (bits 5–7) and <see cref="MemorySize"/> (bits 3–4). The accessors do not validate,
/// because the disassembler must be able to look at garbage without failing.
/// </remarks>
public readonly record struct OpCode(byte Value)
{
    /// <summary><c>lddw</c> (0x18): the only instruction that occupies two 8-byte slots.</summary>
    public static OpCode LoadImmediate64 => Memory(InstructionClass.Load, MemoryMode.Immediate, MemorySize.DoubleWord);

    public InstructionClass Class => (InstructionClass)(Value & 0x07);

    public bool IsAlu => Class is InstructionClass.Alu32 or InstructionClass.Alu64;

    public bool IsJumpClass => Class is InstructionClass.Jump or InstructionClass.Jump32;

    public bool IsLoadOrStore => !IsAlu && !IsJumpClass;

    public SourceOperand Source => (SourceOperand)(Value & 0x08);

    public AluOperation AluOperation => (AluOperation)(Value & 0xf0);

    public JumpOperation JumpOperation => (JumpOperation)(Value & 0xf0);

    public MemorySize Size => (MemorySize)(Value & 0x18);

    public MemoryMode Mode => (MemoryMode)(Value & 0xe0);

    /// <summary>True for <c>lddw</c>, which is followed by a second slot carrying the high 32 bits.</summary>
    public bool IsLoadImmediate64 => Value == LoadImmediate64.Value;

    /// <summary>Number of 8-byte slots an instruction with this opcode occupies (2 for <c>lddw</c>, otherwise 1).</summary>
    public int Width => IsLoadImmediate64 ? 2 : 1;

    /// <summary>True for a conditional or unconditional jump whose offset field is a branch target (not call/exit).</summary>
    public bool IsBranch =>
        IsJumpClass && JumpOperation is not (JumpOperation.Call or JumpOperation.Exit);

    /// <summary>Composes an ALU opcode, e.g. <c>Alu(Alu64, Move, Immediate)</c> = 0xb7.</summary>
    public static OpCode Alu(InstructionClass aluClass, AluOperation operation, SourceOperand source)
    {
        if (aluClass is not (InstructionClass.Alu32 or InstructionClass.Alu64))
        {
            throw new ArgumentException($"ALU opcodes need class Alu32 or Alu64, not {ClassName(aluClass)}.", nameof(aluClass));
        }

        return new OpCode((byte)((byte)aluClass | (byte)operation | (byte)source));
    }

    /// <summary>Composes a jump opcode, e.g. <c>Jump(Jump, Equal, Immediate)</c> = 0x15.</summary>
    public static OpCode Jump(InstructionClass jumpClass, JumpOperation operation, SourceOperand source)
    {
        if (jumpClass is not (InstructionClass.Jump or InstructionClass.Jump32))
        {
            throw new ArgumentException($"Jump opcodes need class Jump or Jump32, not {ClassName(jumpClass)}.", nameof(jumpClass));
        }

        return new OpCode((byte)((byte)jumpClass | (byte)operation | (byte)source));
    }

    /// <summary>Composes a load/store opcode, e.g. <c>Memory(LoadFromMemory, Memory, DoubleWord)</c> = 0x79.</summary>
    public static OpCode Memory(InstructionClass memoryClass, MemoryMode mode, MemorySize size)
    {
        if (memoryClass is not (InstructionClass.Load or InstructionClass.LoadFromMemory
            or InstructionClass.StoreImmediate or InstructionClass.StoreFromRegister))
        {
            throw new ArgumentException($"Memory opcodes need a load or store class, not {ClassName(memoryClass)}.", nameof(memoryClass));
        }

        return new OpCode((byte)((byte)memoryClass | (byte)mode | (byte)size));
    }

    public override string ToString() => $"0x{Value:x2}";

    // Spelled out instead of Enum.ToString() to stay reflection-free under NativeAOT.
    private static string ClassName(InstructionClass instructionClass) => instructionClass switch
    {
        InstructionClass.Load => "Load",
        InstructionClass.LoadFromMemory => "LoadFromMemory",
        InstructionClass.StoreImmediate => "StoreImmediate",
        InstructionClass.StoreFromRegister => "StoreFromRegister",
        InstructionClass.Alu32 => "Alu32",
        InstructionClass.Jump => "Jump",
        InstructionClass.Jump32 => "Jump32",
        InstructionClass.Alu64 => "Alu64",
        _ => $"0x{(byte)instructionClass:x2}",
    };
}
