namespace Pyprobe.Bpf.Asm;

/// <summary>Addressing mode of load/store classes; the top three bits of the opcode.</summary>
public enum MemoryMode : byte
{
    /// <summary><c>BPF_IMM</c>: with <see cref="InstructionClass.Load"/> and <see cref="MemorySize.DoubleWord"/> this is <c>lddw</c>.</summary>
    Immediate = 0x00,
    /// <summary><c>BPF_ABS</c>: legacy socket-filter packet access; decoded only so the disassembler can show it.</summary>
    Absolute = 0x20,
    /// <summary><c>BPF_IND</c>: legacy socket-filter packet access.</summary>
    Indirect = 0x40,
    /// <summary><c>BPF_MEM</c>: ordinary <c>*(size *)(reg + off)</c> access.</summary>
    Memory = 0x60,
    /// <summary><c>BPF_MEMSX</c>: sign-extending load (kernel 6.6+).</summary>
    MemorySignExtend = 0x80,
    /// <summary><c>BPF_ATOMIC</c>: atomic read-modify-write (<c>STX</c> class only); the operation sits in the immediate.</summary>
    Atomic = 0xc0,
}
