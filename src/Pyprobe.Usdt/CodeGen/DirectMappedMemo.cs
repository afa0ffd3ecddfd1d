using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// The pieces the kernel's direct-mapped memos share (the USDT <see cref="StringPairMemo"/>, the eval-frame code-object
/// memo, the call statistics' name generations): a slot index hashed from a key and the tgid, a process's epoch, and
/// the check word that makes a torn value read as a miss.
/// </summary>
public static class DirectMappedMemo
{
    /// <summary>
    /// Writes the slot index of (R1, this process) onto the stack and returns its slot: R1 xor the tgid shifted left by
    /// <paramref name="tgidShift"/>, a multiplicative hash, its top <paramref name="bits"/> bits. Clobbers R1, R2.
    /// </summary>
    public static short EmitIndex(InstructionBuilder code, Register pidTgid, int tgidShift, int bits, string what)
    {
        var index = code.Stack.Allocate(4, what);
        EmitIndexAt(code, pidTgid, tgidShift, bits, Register.FramePointer, index);
        return index;
    }

    /// <summary>As <see cref="EmitIndex"/>, with the index stored as a u32 at <paramref name="at"/> from <paramref name="area"/>.</summary>
    public static void EmitIndexAt(InstructionBuilder code, Register pidTgid, int tgidShift, int bits, Register area, short at) =>
        code.Mov64(Register.R2, pidTgid).Rsh64(Register.R2, 32).Lsh64(Register.R2, tgidShift)
            .Xor64(Register.R1, Register.R2)
            .LoadImm64(Register.R2, unchecked((long)0x9E3779B97F4A7C15))
            .Mul64(Register.R1, Register.R2)
            .Rsh64(Register.R1, 64 - bits)
            .StoreMem(MemorySize.Word, area, at, Register.R1);

    /// <summary>
    /// R0 = pointer to this process's epoch (a u64 in <paramref name="epochsMap"/>, by tgid &amp; (<paramref name="epochSlots"/> − 1)),
    /// or jump to <paramref name="missing"/>. Clobbers R0–R5.
    /// </summary>
    public static void EmitEpoch(InstructionBuilder code, Register pidTgid, string epochsMap, uint epochSlots, string missing) =>
        EmitEpochAt(code, pidTgid, epochsMap, epochSlots, missing, Register.FramePointer, code.Stack.Allocate(4, "epoch key"));

    /// <summary>As <see cref="EmitEpoch"/>, with the key (a u32) written at <paramref name="keyAt"/> from <paramref name="area"/>.</summary>
    public static void EmitEpochAt(InstructionBuilder code, Register pidTgid, string epochsMap, uint epochSlots, string missing, Register area, short keyAt)
    {
        code.Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32).And64(Register.R1, (int)(epochSlots - 1))
            .StoreMem(MemorySize.Word, area, keyAt, Register.R1);
        MapLookup.Emit(code, epochsMap, area, keyAt, missing);
    }

    /// <summary><paramref name="check"/> = the xor of the words of the stack value at <paramref name="value"/> before <paramref name="checkAt"/>.</summary>
    public static void EmitCheckWord(InstructionBuilder code, short value, short checkAt, Register check, Register word) =>
        EmitCheckWord(code, Register.FramePointer, value, checkAt, check, word);

    /// <summary>As the stack's <see cref="EmitCheckWord(InstructionBuilder, short, short, Register, Register)"/>, for a copy at <paramref name="value"/> from <paramref name="area"/>.</summary>
    public static void EmitCheckWord(InstructionBuilder code, Register area, short value, short checkAt, Register check, Register word)
    {
        code.Mov64(check, 0);
        for (short at = 0; at < checkAt; at += 8)
            code.LoadMem(MemorySize.DoubleWord, word, area, (short)(value + at))
                .Xor64(check, word);
    }
}
