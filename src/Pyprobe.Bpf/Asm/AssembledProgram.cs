using System.Buffers.Binary;

namespace Pyprobe.Bpf.Asm;

/// <summary>A map load in an assembled program: the lddw at <paramref name="Slot"/> wants the fd of map <paramref name="Name"/>.</summary>
public readonly record struct MapReference(int Slot, string Name);

/// <summary>
/// The output of <see cref="Assembler"/>: bytecode ready for <c>BPF_PROG_LOAD</c> (its <c>insns</c>/<c>insn_cnt</c>)
/// once every map named in it is bound to an fd (<see cref="BindMaps"/>).
/// </summary>
/// <param name="Bytecode">Little-endian instructions, 8 bytes per slot.</param>
/// <param name="SlotCount">Number of 8-byte slots (what the kernel calls the instruction count; <c>lddw</c> counts 2).</param>
/// <param name="SymbolSlots">Slot index of every label, so verifier messages ("insn 12") can be mapped back to labels.</param>
public sealed record AssembledProgram(byte[] Bytecode, int SlotCount, IReadOnlyDictionary<string, int> SymbolSlots)
{
    /// <summary>Map loads still waiting for an fd; empty once bound (or when the program used literal fds).</summary>
    public IReadOnlyList<MapReference> MapReferences { get; init; } = [];

    /// <summary>The names of the maps the program needs, each once.</summary>
    public IReadOnlyList<string> MapNames => MapReferences.Select(m => m.Name).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Returns a copy with every named map load carrying its fd. A program can thus be generated before its maps
    /// exist, and one generated program can be bound to several sets of maps.
    /// </summary>
    /// <exception cref="AssemblerException">A map the program names has no fd in <paramref name="fds"/>.</exception>
    public AssembledProgram BindMaps(IReadOnlyDictionary<string, int> fds)
    {
        ArgumentNullException.ThrowIfNull(fds);
        var bytecode = (byte[])Bytecode.Clone();
        foreach (var reference in MapReferences)
        {
            if (!fds.TryGetValue(reference.Name, out var fd))
                throw new AssemblerException($"The program loads map '{reference.Name}' (slot {reference.Slot}) but no fd was given for it; given: {string.Join(", ", fds.Keys.Order(StringComparer.Ordinal))}.");
            BinaryPrimitives.WriteInt32LittleEndian(bytecode.AsSpan(reference.Slot * Instruction.SlotSize + 4), fd);
        }
        return this with { Bytecode = bytecode, MapReferences = [] };
    }

    /// <summary>Verifier-style listing of <see cref="Bytecode"/>, one line per instruction.</summary>
    public string Disassemble() => Disassembler.Disassemble(Bytecode);
}
