namespace Pyprobe.Bpf.Asm;

/// <summary>
/// The eleven eBPF registers. The numeric value is what goes into the 4-bit dst/src fields of an instruction.
/// </summary>
/// <remarks>
/// Calling convention (why code generators care): R0 holds helper return values and the program's exit code;
/// R1–R5 carry helper arguments and are clobbered by every call; R6–R9 are callee-saved, so anything needed
/// after a helper call (e.g. the ctx pointer) must live there; R10 is the read-only frame pointer.
/// </remarks>
public enum Register : byte
{
    R0 = 0,
    R1 = 1,
    R2 = 2,
    R3 = 3,
    R4 = 4,
    R5 = 5,
    R6 = 6,
    R7 = 7,
    R8 = 8,
    R9 = 9,
    R10 = 10,

    /// <summary>Read-only frame pointer; the 512-byte stack lives at negative offsets from it.</summary>
    FramePointer = R10,
}
