using System.Buffers.Binary;
using Pyprobe.Bpf.Btf;

namespace Pyprobe.Bpf.Programs;

/// <summary>
/// A program's BPF functions as the kernel finds them (the targets of <c>call</c>s to BPF functions and of <c>lddw</c>s
/// of a function's address), and the func_info records that name them with <see cref="FunctionBtf"/>'s types. Only a
/// program that takes a function's address needs them (bpf_loop's callback): others load as before, without BTF.
/// </summary>
public static class FunctionInfo
{
    private const byte CallOpcode = 0x85;      // BPF_JMP | BPF_CALL
    private const byte LoadImm64Opcode = 0x18; // BPF_LD | BPF_IMM | BPF_DW
    private const int PseudoCall = 1;          // BPF_PSEUDO_CALL
    private const int PseudoFunction = 4;      // BPF_PSEUDO_FUNC

    /// <summary>Bytes of one record: struct bpf_func_info { u32 insn_off; u32 type_id; }.</summary>
    public const int RecordSize = 8;

    /// <summary>The records for <paramref name="bytecode"/>, or null when it takes no function's address.</summary>
    public static byte[]? For(ReadOnlySpan<byte> bytecode)
    {
        var starts = new SortedSet<int> { 0 };
        var takesAddress = false;
        var slots = bytecode.Length / 8;
        for (var i = 0; i < slots; i++)
        {
            var slot = bytecode.Slice(i * 8, 8);
            var source = slot[1] >> 4;
            var target = i + 1 + BinaryPrimitives.ReadInt32LittleEndian(slot[4..]);
            if (slot[0] == CallOpcode && source == PseudoCall) starts.Add(target);
            else if (slot[0] == LoadImm64Opcode)
            {
                if (source == PseudoFunction)
                {
                    starts.Add(target);
                    takesAddress = true;
                }
                i++; // the second half of the lddw
            }
        }
        if (!takesAddress) return null;
        var records = new byte[starts.Count * RecordSize];
        var n = 0;
        foreach (var start in starts)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(records.AsSpan(n * RecordSize), (uint)start);
            BinaryPrimitives.WriteUInt32LittleEndian(records.AsSpan(n * RecordSize + 4), start == 0 ? FunctionBtf.ProgramFunction : FunctionBtf.CallbackFunction);
            n++;
        }
        return records;
    }
}
