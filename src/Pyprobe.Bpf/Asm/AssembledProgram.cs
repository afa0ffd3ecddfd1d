namespace Pyprobe.Bpf.Asm;

/// <summary>
/// The output of <see cref="Assembler"/>: bytecode ready for <c>BPF_PROG_LOAD</c> (its <c>insns</c>/<c>insn_cnt</c>).
/// </summary>
/// <param name="Bytecode">Little-endian instructions, 8 bytes per slot.</param>
/// <param name="SlotCount">Number of 8-byte slots (what the kernel calls the instruction count; <c>lddw</c> counts 2).</param>
/// <param name="SymbolSlots">Slot index of every label, so verifier messages ("insn 12") can be mapped back to labels.</param>
public sealed record AssembledProgram(byte[] Bytecode, int SlotCount, IReadOnlyDictionary<string, int> SymbolSlots)
{
    /// <summary>Verifier-style listing of <see cref="Bytecode"/>, one line per instruction.</summary>
    public string Disassemble() => Disassembler.Disassemble(Bytecode);
}
