namespace Pyprobe.Usdt.Unwind;

/// <summary>Why an unwind ended.</summary>
public enum NativeUnwindStop
{
    /// <summary>The last frame's return address is undefined: the outermost frame (_start, clone/clone3's child).</summary>
    Complete,
    /// <summary>A saved value lies beyond the copied bytes of the stack: the copy was too short for the rest.</summary>
    OutsideCopy,
    /// <summary>The code address is executable but no ELF file describes it (JIT code, an unreadable file).</summary>
    NoModule,
    /// <summary>The module's .eh_frame has no FDE for the address (or the module has no .eh_frame).</summary>
    NoUnwindInfo,
    /// <summary>A rule the unwinder does not evaluate: a DWARF expression, a CFA in some other register, rbp needed but unknown.</summary>
    Unsupported,
    /// <summary>The frame limit was reached with more frames to go.</summary>
    MaxFrames,
    /// <summary>A return address of 0 or outside executable memory, or a CFA that does not move up the stack: the stack is not what the rules say.</summary>
    BadAddress,
}

/// <summary>
/// The native frames of one sample: <see cref="ProgramCounters"/>[0] is the sampled instruction pointer, the others are
/// return addresses (the call instruction is the byte before: name them at pc − 1).
/// </summary>
public sealed record NativeUnwind(IReadOnlyList<ulong> ProgramCounters, NativeUnwindStop Stop);
