using System.Buffers.Binary;
using System.Globalization;

namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Renders raw bytecode in the kernel verifier's notation (<c>kernel/bpf/disasm.c</c>), e.g.
/// <c>3: (15) if r0 == 0x0 goto pc+5</c>, so our listings can be read side by side with a verifier log.
/// </summary>
/// <remarks>
/// Error paths print this next to verifier output, so it must never throw: unknown opcodes become
/// <c>(xx) unknown</c>, a truncated <c>lddw</c> or trailing partial slot gets its own line. Line numbers are slot
/// indices like the verifier's (an <c>lddw</c> at 4 is followed by 6).
/// </remarks>
public static class Disassembler
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Whole listing, lines separated by <c>\n</c> (no trailing newline).</summary>
    public static string Disassemble(ReadOnlySpan<byte> bytecode) => string.Join('\n', DisassembleLines(bytecode));

    /// <summary>One line per instruction, each prefixed with its slot index (<c>"0: (b7) r0 = 0"</c>).</summary>
    public static IReadOnlyList<string> DisassembleLines(ReadOnlySpan<byte> bytecode)
    {
        var lines = new List<string>(bytecode.Length / Instruction.SlotSize + 1);
        var slot = 0;
        while (bytecode.Length >= Instruction.SlotSize)
        {
            var width = 1;
            string text;
            var opCode = new OpCode(bytecode[0]);
            if (opCode.IsLoadImmediate64)
            {
                if (bytecode.Length < 2 * Instruction.SlotSize)
                {
                    text = $"({opCode.Value:x2}) lddw truncated: second slot missing";
                }
                else
                {
                    width = 2;
                    text = FormatLoadImmediate64(bytecode[..(2 * Instruction.SlotSize)]);
                }
            }
            else
            {
                text = FormatSingleSlot(bytecode[..Instruction.SlotSize]);
            }

            lines.Add($"{slot}: {text}");
            slot += width;
            bytecode = bytecode[(width * Instruction.SlotSize)..];
        }

        if (!bytecode.IsEmpty)
        {
            lines.Add($"{slot}: ({bytecode.Length} trailing bytes, not a whole 8-byte instruction)");
        }

        return lines;
    }

    /// <summary>
    /// Text of one encoded instruction without the slot prefix (e.g. <c>"(bf) r6 = r1"</c>); <paramref name="encoded"/>
    /// must hold both slots for an <c>lddw</c>. Never throws.
    /// </summary>
    public static string Format(ReadOnlySpan<byte> encoded)
    {
        var lines = DisassembleLines(encoded);
        if (lines.Count == 0)
        {
            return "(empty)";
        }

        var line = lines[0];
        return line[(line.IndexOf(": ", StringComparison.Ordinal) + 2)..];
    }

    /// <summary>Text of one <see cref="Instruction"/> (labels unresolved: jumps show their current offset).</summary>
    public static string Format(Instruction instruction)
    {
        Span<byte> buffer = stackalloc byte[2 * Instruction.SlotSize];
        try
        {
            instruction.EncodeTo(buffer);
        }
        catch (ArgumentException e)
        {
            return $"({instruction.OpCode.Value:x2}) unencodable: {e.Message}";
        }

        return Format(buffer[..(instruction.Width * Instruction.SlotSize)]);
    }

    private static string FormatSingleSlot(ReadOnlySpan<byte> slot)
    {
        var op = new OpCode(slot[0]);
        var dst = slot[1] & 0x0f;
        var src = slot[1] >> 4;
        var off = BinaryPrimitives.ReadInt16LittleEndian(slot[2..]);
        var imm = BinaryPrimitives.ReadInt32LittleEndian(slot[4..]);
        var code = $"({op.Value:x2})";

        var body = op.Class switch
        {
            InstructionClass.Alu32 or InstructionClass.Alu64 => FormatAlu(op, dst, src, off, imm),
            InstructionClass.Jump or InstructionClass.Jump32 => FormatJump(op, dst, src, off, imm),
            InstructionClass.LoadFromMemory => FormatLoadFromMemory(op, dst, src, off),
            InstructionClass.StoreImmediate => op.Mode == MemoryMode.Memory
                ? $"*({SizeName(op.Size)} *)(r{dst} {Signed(off)}) = {imm.ToString(Invariant)}"
                : null,
            InstructionClass.StoreFromRegister => FormatStoreFromRegister(op, dst, src, off, imm),
            InstructionClass.Load => FormatLegacyLoad(op, src, imm),
            _ => null,
        };

        return $"{code} {body ?? "unknown"}";
    }

    private static string? FormatAlu(OpCode op, int dst, int src, short off, int imm)
    {
        // The verifier writes 32-bit operands as wN and 64-bit ones as rN.
        var r = op.Class == InstructionClass.Alu64 ? 'r' : 'w';
        var operation = op.AluOperation;
        switch (operation)
        {
            case AluOperation.Negate:
                return $"{r}{dst} = -{r}{dst}";
            case AluOperation.ByteSwap:
                if (op.Class == InstructionClass.Alu64)
                {
                    return $"r{dst} = bswap{imm.ToString(Invariant)} r{dst}";
                }

                return $"r{dst} = {(op.Source == SourceOperand.Register ? "be" : "le")}{imm.ToString(Invariant)} r{dst}";
            case AluOperation.Move when op.Source == SourceOperand.Register && off is 8 or 16 or 32:
                // movsx (6.6+): sign-extending move, width in the offset field.
                return $"{r}{dst} = (s{off.ToString(Invariant)}){r}{src}";
        }

        var symbol = AluSymbol(operation, signed: off == 1);
        if (symbol is null)
        {
            return null;
        }

        return op.Source == SourceOperand.Register
            ? $"{r}{dst} {symbol} {r}{src}"
            : $"{r}{dst} {symbol} {imm.ToString(Invariant)}";
    }

    private static string? FormatJump(OpCode op, int dst, int src, short off, int imm)
    {
        var isJump32 = op.Class == InstructionClass.Jump32;
        switch (op.JumpOperation)
        {
            case JumpOperation.Call when !isJump32:
                return src switch
                {
                    (int)PseudoSource.BpfFunctionCall => $"call pc{Signed(imm)}",
                    (int)PseudoSource.KernelFunctionCall => $"call kernel-function#{imm.ToString(Invariant)}",
                    _ => $"call {HelperFunctionNames.KernelName(imm) ?? "unknown"}#{imm.ToString(Invariant)}",
                };
            case JumpOperation.Exit when !isJump32:
                return "exit";
            case JumpOperation.Always:
                return isJump32 ? $"gotol pc{Signed(imm)}" : $"goto pc{Signed(off)}";
            case JumpOperation.Call or JumpOperation.Exit:
                return null;
        }

        var symbol = JumpSymbol(op.JumpOperation);
        if (symbol is null)
        {
            return null;
        }

        var r = isJump32 ? 'w' : 'r';
        var right = op.Source == SourceOperand.Register
            ? $"{r}{src}"
            : $"0x{((uint)imm).ToString("x", Invariant)}";
        return $"if {r}{dst} {symbol} {right} goto pc{Signed(off)}";
    }

    private static string? FormatLoadFromMemory(OpCode op, int dst, int src, short off) => op.Mode switch
    {
        MemoryMode.Memory => $"r{dst} = *({SizeName(op.Size)} *)(r{src} {Signed(off)})",
        MemoryMode.MemorySignExtend when op.Size != MemorySize.DoubleWord =>
            $"r{dst} = *(s{SizeBits(op.Size)} *)(r{src} {Signed(off)})",
        _ => null,
    };

    private static string? FormatStoreFromRegister(OpCode op, int dst, int src, short off, int imm)
    {
        var size = SizeName(op.Size);
        var address = $"(r{dst} {Signed(off)})";
        if (op.Mode == MemoryMode.Memory)
        {
            return $"*({size} *){address} = r{src}";
        }

        if (op.Mode != MemoryMode.Atomic || op.Size is not (MemorySize.Word or MemorySize.DoubleWord))
        {
            return null;
        }

        // Atomic operation codes live in the immediate: an ALU op, optionally | BPF_FETCH (0x01).
        var wide = op.Size == MemorySize.DoubleWord ? "64" : string.Empty;
        return imm switch
        {
            0x00 or 0x40 or 0x50 or 0xa0 => $"lock *({size} *){address} {AluSymbol((AluOperation)imm, signed: false)} r{src}",
            0x01 or 0x41 or 0x51 or 0xa1 =>
                $"r{src} = atomic{wide}_fetch_{AtomicName(imm & 0xf0)}(({size} *){address}, r{src})",
            0xe1 => $"r{src} = atomic{wide}_xchg(({size} *){address}, r{src})",
            0xf1 => $"r0 = atomic{wide}_cmpxchg(({size} *){address}, r0, r{src})",
            _ => null,
        };
    }

    private static string? FormatLegacyLoad(OpCode op, int src, int imm) => op.Mode switch
    {
        MemoryMode.Absolute => $"r0 = *({SizeName(op.Size)} *)skb[{imm.ToString(Invariant)}]",
        MemoryMode.Indirect => $"r0 = *({SizeName(op.Size)} *)skb[r{src} + {imm.ToString(Invariant)}]",
        _ => null,
    };

    private static string FormatLoadImmediate64(ReadOnlySpan<byte> slots)
    {
        var dst = slots[1] & 0x0f;
        var src = slots[1] >> 4;
        var low = BinaryPrimitives.ReadUInt32LittleEndian(slots[4..]);
        var high = BinaryPrimitives.ReadUInt32LittleEndian(slots[(Instruction.SlotSize + 4)..]);
        var value = ((ulong)high << 32) | low;

        // The verifier rejects a second slot with anything but the immediate set; flag it rather than hide it.
        var secondSlot = slots[Instruction.SlotSize..];
        var malformed = secondSlot[0] != 0 || secondSlot[1] != 0 || secondSlot[2] != 0 || secondSlot[3] != 0
            ? " (malformed second slot)"
            : string.Empty;

        var operand = src switch
        {
            (int)PseudoSource.MapFd => $"map[fd:{((int)low).ToString(Invariant)}]",
            (int)PseudoSource.MapValue => $"map[fd:{((int)low).ToString(Invariant)}][0]+{high.ToString(Invariant)}",
            _ => $"0x{value.ToString("x", Invariant)}",
        };
        return $"({slots[0]:x2}) r{dst} = {operand}{malformed}";
    }

    private static string? AluSymbol(AluOperation operation, bool signed) => operation switch
    {
        AluOperation.Add => "+=",
        AluOperation.Subtract => "-=",
        AluOperation.Multiply => "*=",
        AluOperation.Divide => signed ? "s/=" : "/=",
        AluOperation.Or => "|=",
        AluOperation.And => "&=",
        AluOperation.LeftShift => "<<=",
        AluOperation.RightShift => ">>=",
        AluOperation.Modulo => signed ? "s%=" : "%=",
        AluOperation.Xor => "^=",
        AluOperation.Move => "=",
        AluOperation.ArithmeticRightShift => "s>>=",
        _ => null,
    };

    private static string AtomicName(int operation) => operation switch
    {
        0x00 => "add",
        0x40 => "or",
        0x50 => "and",
        _ => "xor",
    };

    private static string? JumpSymbol(JumpOperation operation) => operation switch
    {
        JumpOperation.Equal => "==",
        JumpOperation.Greater => ">",
        JumpOperation.GreaterOrEqual => ">=",
        JumpOperation.BitsSet => "&",
        JumpOperation.NotEqual => "!=",
        JumpOperation.SignedGreater => "s>",
        JumpOperation.SignedGreaterOrEqual => "s>=",
        JumpOperation.Less => "<",
        JumpOperation.LessOrEqual => "<=",
        JumpOperation.SignedLess => "s<",
        JumpOperation.SignedLessOrEqual => "s<=",
        _ => null,
    };

    private static string SizeName(MemorySize size) => size switch
    {
        MemorySize.Byte => "u8",
        MemorySize.HalfWord => "u16",
        MemorySize.Word => "u32",
        _ => "u64",
    };

    private static int SizeBits(MemorySize size) => size switch
    {
        MemorySize.Byte => 8,
        MemorySize.HalfWord => 16,
        MemorySize.Word => 32,
        _ => 64,
    };

    // The kernel prints offsets with "%+d": always a sign.
    private static string Signed(int value) => value.ToString("+0;-0;+0", Invariant);
}
