namespace Pyprobe.Bpf.Asm;

/// <summary>Arithmetic operation in the top four bits of an <see cref="InstructionClass.Alu32"/>/<see cref="InstructionClass.Alu64"/> opcode.</summary>
public enum AluOperation : byte
{
    /// <summary><c>dst += src</c></summary>
    Add = 0x00,
    /// <summary><c>dst -= src</c></summary>
    Subtract = 0x10,
    /// <summary><c>dst *= src</c></summary>
    Multiply = 0x20,
    /// <summary><c>dst /= src</c> (unsigned; division by zero yields 0 rather than trapping).</summary>
    Divide = 0x30,
    /// <summary><c>dst |= src</c></summary>
    Or = 0x40,
    /// <summary><c>dst &amp;= src</c></summary>
    And = 0x50,
    /// <summary><c>dst &lt;&lt;= src</c></summary>
    LeftShift = 0x60,
    /// <summary><c>dst &gt;&gt;= src</c> (logical).</summary>
    RightShift = 0x70,
    /// <summary><c>dst = -dst</c> (no source operand).</summary>
    Negate = 0x80,
    /// <summary><c>dst %= src</c> (unsigned).</summary>
    Modulo = 0x90,
    /// <summary><c>dst ^= src</c></summary>
    Xor = 0xa0,
    /// <summary><c>dst = src</c></summary>
    Move = 0xb0,
    /// <summary><c>dst s&gt;&gt;= src</c> (sign-preserving shift).</summary>
    ArithmeticRightShift = 0xc0,
    /// <summary><c>BPF_END</c>: byte-swap; width in the immediate (16/32/64).</summary>
    ByteSwap = 0xd0,
}
