using System.Buffers.Binary;

namespace Pyprobe.Bpf.Asm;

/// <summary>
/// One eBPF instruction as a value. A 64-bit immediate load (<c>lddw</c>) is a single <see cref="Instruction"/> with
/// <see cref="Width"/> 2, so code generators never see the half-instruction second slot.
/// </summary>
/// <remarks>
/// Labels are metadata, as in cilium/ebpf: <see cref="Symbol"/> names this instruction as a jump target, and
/// <see cref="Reference"/> names the symbol a jump (or BPF-to-BPF call) wants; <see cref="Assembler"/> turns the
/// reference into an offset. Keeping labels out of the instruction stream means indices equal emitted instructions.
/// </remarks>
/// <param name="OpCode">The 8-bit opcode.</param>
/// <param name="Destination">dst register (low nibble of byte 1).</param>
/// <param name="Source">src register or pseudo-source (high nibble of byte 1).</param>
/// <param name="Offset">Signed 16-bit memory displacement or jump offset in slots.</param>
/// <param name="Constant">Immediate. 32 bits for every instruction except <c>lddw</c>, which uses all 64.</param>
/// <param name="Symbol">Label naming this instruction as a jump target, or null.</param>
/// <param name="Reference">Label this instruction jumps to (offset still to be fixed up), or null.</param>
/// <param name="Map">For a map load (<c>lddw</c> with <see cref="PseudoSource.MapFd"/>): the map's name, bound to an fd
/// by <see cref="AssembledProgram.BindMaps"/> when the maps exist; null for a literal fd.</param>
public readonly record struct Instruction(
    OpCode OpCode,
    Register Destination,
    Register Source,
    short Offset,
    long Constant,
    string? Symbol = null,
    string? Reference = null,
    string? Map = null)
{
    /// <summary>Size of one instruction slot in bytes.</summary>
    public const int SlotSize = 8;

    /// <summary>Number of 8-byte slots this instruction occupies: 2 for <c>lddw</c>, otherwise 1.</summary>
    public int Width => OpCode.Width;

    /// <summary>Returns a copy marked as the target of <paramref name="symbol"/>.</summary>
    public Instruction WithSymbol(string? symbol) => this with { Symbol = symbol };

    /// <summary>Returns a copy that jumps to <paramref name="reference"/>; the offset is filled in when assembling.</summary>
    public Instruction WithReference(string? reference) => this with { Reference = reference };

    /// <summary>
    /// Writes the instruction's <see cref="Width"/> slots (little-endian) into <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The span is too short, a register does not fit in 4 bits, or a
    /// non-<c>lddw</c> constant does not fit in 32 bits (it would be silently truncated otherwise).</exception>
    public void EncodeTo(Span<byte> destination)
    {
        var bytes = Width * SlotSize;
        if (destination.Length < bytes)
        {
            throw new ArgumentException($"Instruction needs {bytes} bytes but only {destination.Length} are available.", nameof(destination));
        }

        if ((byte)Destination > 0x0f || (byte)Source > 0x0f)
        {
            throw new ArgumentException($"Register numbers must fit in 4 bits (dst={(byte)Destination}, src={(byte)Source}).");
        }

        int low;
        if (OpCode.IsLoadImmediate64)
        {
            low = unchecked((int)Constant);
        }
        else if (Constant is < int.MinValue or > int.MaxValue)
        {
            throw new ArgumentException($"Immediate {Constant} of opcode {OpCode} does not fit in 32 bits; use LoadImm64 for 64-bit constants.");
        }
        else
        {
            low = (int)Constant;
        }

        WriteSlot(destination, OpCode.Value, (byte)((byte)Destination | ((byte)Source << 4)), Offset, low);
        if (OpCode.IsLoadImmediate64)
        {
            // The second half of lddw is a pseudo-instruction: opcode, registers and offset are all zero,
            // only the immediate carries the upper 32 bits.
            WriteSlot(destination[SlotSize..], 0, 0, 0, unchecked((int)(Constant >> 32)));
        }
    }

    /// <summary>Returns the encoded bytes of this instruction (8 or 16 bytes).</summary>
    public byte[] Encode()
    {
        var bytes = new byte[Width * SlotSize];
        EncodeTo(bytes);
        return bytes;
    }

    /// <summary>
    /// Reads one instruction from the start of <paramref name="source"/>. Returns false (never throws) when the
    /// bytes are too short, including an <c>lddw</c> missing its second slot.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> source, out Instruction instruction)
    {
        instruction = default;
        if (source.Length < SlotSize)
        {
            return false;
        }

        var opCode = new OpCode(source[0]);
        var registers = source[1];
        var offset = BinaryPrimitives.ReadInt16LittleEndian(source[2..]);
        long constant = BinaryPrimitives.ReadInt32LittleEndian(source[4..]);
        if (opCode.IsLoadImmediate64)
        {
            if (source.Length < 2 * SlotSize)
            {
                return false;
            }

            var high = BinaryPrimitives.ReadUInt32LittleEndian(source[(SlotSize + 4)..]);
            constant = (long)(((ulong)high << 32) | (uint)constant);
        }

        instruction = new Instruction(opCode, (Register)(registers & 0x0f), (Register)(registers >> 4), offset, constant);
        return true;
    }

    private static void WriteSlot(Span<byte> slot, byte code, byte registers, short offset, int immediate)
    {
        slot[0] = code;
        slot[1] = registers;
        BinaryPrimitives.WriteInt16LittleEndian(slot[2..], offset);
        BinaryPrimitives.WriteInt32LittleEndian(slot[4..], immediate);
    }
}
