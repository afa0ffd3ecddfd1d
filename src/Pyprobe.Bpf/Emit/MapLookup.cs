using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Emit;

/// <summary>Lookups by a key already on the stack, and the per-CPU counters kept in such values.</summary>
public static class MapLookup
{
    /// <summary>Allocates a u32 stack slot holding 0, the key of single-entry arrays (scratch, zero values).</summary>
    public static short ZeroKey(InstructionBuilder code)
    {
        var slot = code.Stack.Allocate(4, "zero key");
        code.StoreImm(MemorySize.Word, Register.FramePointer, slot, 0);
        return slot;
    }

    /// <summary>R0 = the value at the key in stack slot <paramref name="keySlot"/>, or jump to <paramref name="missing"/>. Clobbers R0–R5.</summary>
    public static InstructionBuilder Emit(InstructionBuilder code, string map, short keySlot, string missing) =>
        code.LoadMap(Register.R1, map)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, keySlot)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, missing);

    /// <summary><c>lock *(u64 *)(value + offset) += 1</c>. Clobbers R1.</summary>
    public static InstructionBuilder Increment(InstructionBuilder code, Register value, int counterOffset) =>
        code.Mov64(Register.R1, 1).AtomicAdd64(value, (short)counterOffset, Register.R1);
}
