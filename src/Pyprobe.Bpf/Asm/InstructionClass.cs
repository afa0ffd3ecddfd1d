namespace Pyprobe.Bpf.Asm;

/// <summary>The low three bits of every opcode: which family the instruction belongs to.</summary>
public enum InstructionClass : byte
{
    /// <summary><c>BPF_LD</c>: only <c>lddw</c> (64-bit immediate) matters outside legacy socket filters.</summary>
    Load = 0x00,
    /// <summary><c>BPF_LDX</c>: load from memory into a register.</summary>
    LoadFromMemory = 0x01,
    /// <summary><c>BPF_ST</c>: store an immediate to memory.</summary>
    StoreImmediate = 0x02,
    /// <summary><c>BPF_STX</c>: store a register to memory (also atomics).</summary>
    StoreFromRegister = 0x03,
    /// <summary><c>BPF_ALU</c>: 32-bit arithmetic; the result is zero-extended to 64 bits.</summary>
    Alu32 = 0x04,
    /// <summary><c>BPF_JMP</c>: 64-bit comparisons, calls and exit.</summary>
    Jump = 0x05,
    /// <summary><c>BPF_JMP32</c>: comparisons on the low 32 bits only.</summary>
    Jump32 = 0x06,
    /// <summary><c>BPF_ALU64</c>: 64-bit arithmetic.</summary>
    Alu64 = 0x07,
}
