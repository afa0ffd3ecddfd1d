namespace Pyprobe.Bpf.Asm;

/// <summary>Access width of a load/store (<c>BPF_W</c>, <c>BPF_H</c>, <c>BPF_B</c>, <c>BPF_DW</c>); bits 3–4 of the opcode.</summary>
public enum MemorySize : byte
{
    /// <summary><c>BPF_W</c>: 4 bytes (u32).</summary>
    Word = 0x00,
    /// <summary><c>BPF_H</c>: 2 bytes (u16).</summary>
    HalfWord = 0x08,
    /// <summary><c>BPF_B</c>: 1 byte (u8).</summary>
    Byte = 0x10,
    /// <summary><c>BPF_DW</c>: 8 bytes (u64).</summary>
    DoubleWord = 0x18,
}
