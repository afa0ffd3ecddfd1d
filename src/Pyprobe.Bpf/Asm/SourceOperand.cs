namespace Pyprobe.Bpf.Asm;

/// <summary>Bit 3 of ALU and jump opcodes: whether the second operand is the immediate or the src register.</summary>
public enum SourceOperand : byte
{
    /// <summary><c>BPF_K</c>: use the 32-bit immediate (sign-extended for 64-bit operations).</summary>
    Immediate = 0x00,
    /// <summary><c>BPF_X</c>: use the src register.</summary>
    Register = 0x08,
}
