namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Every operation in the top four bits of a <see cref="InstructionClass.Jump"/>/<see cref="InstructionClass.Jump32"/> opcode,
/// including the unconditional ones (call, exit, ja). Code generators emit conditions through <see cref="JumpCondition"/>,
/// which cannot express call/exit by mistake.
/// </summary>
public enum JumpOperation : byte
{
    /// <summary><c>ja</c>: unconditional jump.</summary>
    Always = 0x00,
    Equal = 0x10,
    Greater = 0x20,
    GreaterOrEqual = 0x30,
    /// <summary><c>jset</c>: jump if <c>dst &amp; src</c> is non-zero.</summary>
    BitsSet = 0x40,
    NotEqual = 0x50,
    SignedGreater = 0x60,
    SignedGreaterOrEqual = 0x70,
    /// <summary><c>call</c>: helper id (or relative target) in the immediate.</summary>
    Call = 0x80,
    /// <summary><c>exit</c>: return R0.</summary>
    Exit = 0x90,
    Less = 0xa0,
    LessOrEqual = 0xb0,
    SignedLess = 0xc0,
    SignedLessOrEqual = 0xd0,
}
