namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Hands out slots of a BPF program's 512-byte stack (offsets from the frame pointer, R10), so fragments never
/// number their slots by hand or overlap another fragment's. Slots are 8-byte aligned and never given back: the
/// verifier tracks every stack byte's state, and reuse would make one fragment's leftovers another's input.
/// </summary>
public sealed class StackSlots
{
    /// <summary>MAX_BPF_STACK.</summary>
    public const int Size = 512;

    /// <summary>Bytes allocated so far (the deepest slot is at −<see cref="Used"/>).</summary>
    public int Used { get; private set; }

    /// <summary>Returns the frame-pointer offset of a new slot of <paramref name="bytes"/> bytes (rounded up to 8).</summary>
    /// <exception cref="AssemblerException">The stack would exceed 512 bytes.</exception>
    public short Allocate(int bytes, string purpose = "slot")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytes, 1);
        var used = Used + (bytes + 7) / 8 * 8;
        if (used > Size)
            throw new AssemblerException($"Stack slot '{purpose}' ({bytes} bytes) does not fit: {Used} of {Size} bytes are already used.");
        Used = used;
        return (short)-used;
    }
}
