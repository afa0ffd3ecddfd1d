namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Turns a list of <see cref="Instruction"/>s into bytecode, resolving label references in two passes.
/// </summary>
/// <remarks>
/// Pass 1 walks the instructions adding up <see cref="Instruction.Width"/> to find each symbol's slot, because jump
/// offsets count 8-byte slots, not instructions (an <c>lddw</c> in between counts twice). Pass 2 patches every
/// reference with <c>target − (slot + 1)</c> (offsets are relative to the next slot) and encodes.
/// </remarks>
public static class Assembler
{
    /// <exception cref="AssemblerException">Empty program, duplicate or undefined label, a reference on an
    /// instruction that cannot jump, or a jump offset that does not fit its field.</exception>
    public static AssembledProgram Assemble(IReadOnlyList<Instruction> instructions)
    {
        ArgumentNullException.ThrowIfNull(instructions);
        if (instructions.Count == 0)
        {
            throw new AssemblerException("Cannot assemble an empty program: the kernel requires at least one instruction (an exit).");
        }

        // Pass 1: slot of every instruction and every symbol.
        var slots = new int[instructions.Count];
        var symbolSlots = new Dictionary<string, int>(StringComparer.Ordinal);
        var symbolIndices = new Dictionary<string, int>(StringComparer.Ordinal);
        var slotCount = 0;
        for (var i = 0; i < instructions.Count; i++)
        {
            slots[i] = slotCount;
            if (instructions[i].Symbol is { } symbol)
            {
                if (!symbolSlots.TryAdd(symbol, slotCount))
                {
                    throw new AssemblerException(
                        $"Duplicate label '{symbol}': defined at instruction {symbolIndices[symbol]} and again at instruction {i}.");
                }

                symbolIndices[symbol] = i;
            }

            slotCount += instructions[i].Width;
        }

        // Pass 2: fix up references and encode.
        var bytecode = new byte[slotCount * Instruction.SlotSize];
        var maps = new List<MapReference>();
        for (var i = 0; i < instructions.Count; i++)
        {
            var instruction = instructions[i];
            if (instruction.Map is { } map)
            {
                if (!instruction.OpCode.IsLoadImmediate64 || (instruction.Source != PseudoSource.MapFd && instruction.Source != PseudoSource.MapValue))
                    throw new AssemblerException($"Instruction {i} names map '{map}' but is not a map load (lddw with src={PseudoSource.MapFd} or {PseudoSource.MapValue}).");
                maps.Add(new MapReference(slots[i], map));
            }

            if (instruction.Reference is { } reference)
            {
                instruction = Resolve(instruction, i, slots[i], reference, symbolSlots);
            }

            try
            {
                instruction.EncodeTo(bytecode.AsSpan(slots[i] * Instruction.SlotSize));
            }
            catch (ArgumentException e)
            {
                throw new AssemblerException($"Cannot encode instruction {i}: {e.Message}", e);
            }
        }

        return new AssembledProgram(bytecode, slotCount, symbolSlots) { MapReferences = maps };
    }

    private static Instruction Resolve(Instruction instruction, int index, int slot, string reference, Dictionary<string, int> symbolSlots)
    {
        if (!symbolSlots.TryGetValue(reference, out var targetSlot))
        {
            throw new AssemblerException($"Instruction {index} (slot {slot}) jumps to undefined label '{reference}'.");
        }

        // Relative to the slot after the jump; jumps are always one slot wide.
        long delta = targetSlot - (slot + 1);
        var op = instruction.OpCode;

        // gotol (JMP32|JA) and BPF-to-BPF calls carry their offset in the 32-bit immediate, which always fits
        // because a program cannot have more than 2^31 slots.
        var isLongJump = op.Class == InstructionClass.Jump32 && op.JumpOperation == JumpOperation.Always;
        var isLocalCall = op.Class == InstructionClass.Jump && op.JumpOperation == JumpOperation.Call
            && instruction.Source == PseudoSource.BpfFunctionCall;
        var isFunctionAddress = op == OpCode.LoadImmediate64 && instruction.Source == PseudoSource.Function;
        if (isLongJump || isLocalCall || isFunctionAddress)
        {
            return instruction with { Constant = delta };
        }

        if (!op.IsBranch)
        {
            throw new AssemblerException(
                $"Instruction {index} (opcode {op}) references label '{reference}' but is not a jump; only jumps and BPF-to-BPF calls can reference labels.");
        }

        if (delta is < short.MinValue or > short.MaxValue)
        {
            throw new AssemblerException(
                $"Jump at instruction {index} (slot {slot}) to label '{reference}' (slot {targetSlot}) needs offset {delta}, "
                + $"outside the 16-bit range [{short.MinValue}, {short.MaxValue}].");
        }

        return instruction with { Offset = (short)delta };
    }
}
