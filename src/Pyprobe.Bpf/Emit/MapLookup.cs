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
        Emit(code, map, Register.FramePointer, keySlot, missing);

    /// <summary>R0 = the value at the key at <paramref name="keyAt"/> from <paramref name="area"/> (the stack or a map value), or jump to <paramref name="missing"/>. Clobbers R0–R5.</summary>
    public static InstructionBuilder Emit(InstructionBuilder code, string map, Register area, short keyAt, string missing) =>
        code.LoadMap(Register.R1, map)
            .Mov64(Register.R2, area).Add64(Register.R2, keyAt)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, missing);

    /// <summary><c>lock *(u64 *)(value + offset) += 1</c>. Clobbers R1.</summary>
    public static InstructionBuilder Increment(InstructionBuilder code, Register value, int counterOffset) =>
        code.Mov64(Register.R1, 1).AtomicAdd64(value, (short)counterOffset, Register.R1);

    /// <summary>
    /// Finds the value at the key in <paramref name="keySlot"/> (jump to <paramref name="found"/> with it in R0), or
    /// creates it with BPF_NOEXIST from the value <paramref name="initialValue"/> leaves R3 pointing at, then looks
    /// again (another CPU may have created it meanwhile). Falls through when the map is full. Clobbers R0–R5.
    /// </summary>
    /// <param name="initialValue">Emits R3 = pointer to the initial value (may jump away when it has none).</param>
    /// <param name="created">Emitted only in the program whose update created the entry, or null.</param>
    public static void EmitFindOrCreate(InstructionBuilder code, string map, short keySlot, Action initialValue, string found, Action? created = null)
    {
        const int noExist = 1; // BPF_NOEXIST
        var relookup = code.Scope("create")["relookup"];
        EmitFind(code, map, keySlot, found);
        initialValue();
        code.LoadMap(Register.R1, map)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, keySlot)
            .Mov64(Register.R4, noExist)
            .Call(HelperFunction.MapUpdateElem);
        if (created is not null)
        {
            code.JumpIf(JumpCondition.NotEqual, Register.R0, 0, relookup);
            created();
            code.Label(relookup);
        }
        EmitFind(code, map, keySlot, found);
    }

    private static void EmitFind(InstructionBuilder code, string map, short keySlot, string found) =>
        code.LoadMap(Register.R1, map)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, keySlot)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, found);
}
