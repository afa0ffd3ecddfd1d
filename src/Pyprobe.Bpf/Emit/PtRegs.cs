using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Emit;

/// <summary>
/// x86-64 <c>struct pt_regs</c> (asm/ptrace.h): the ctx of uprobe programs, and the <c>regs</c> at offset 0 of a
/// perf-event program's <c>bpf_perf_event_data</c>. The verifier allows only constant ctx offsets, so every register
/// is read with one load at a fixed offset.
/// </summary>
public static class PtRegs
{
    public const int R15 = 0, R14 = 8, R13 = 16, R12 = 24, Rbp = 32, Rbx = 40, R11 = 48, R10 = 56, R9 = 64, R8 = 72;
    public const int Rax = 80, Rcx = 88, Rdx = 96, Rsi = 104, Rdi = 112, OrigRax = 120;

    /// <summary>The instruction pointer: at a uprobe, the runtime address of the probed instruction.</summary>
    public const int Ip = 128;

    public const int Cs = 136, Flags = 144, Sp = 152, Ss = 160;

    /// <summary>sizeof(struct pt_regs).</summary>
    public const int Size = 168;

    /// <summary><c>dst = *(u64 *)(ctx + field)</c> for one of the offsets above.</summary>
    public static InstructionBuilder Load(InstructionBuilder code, Register dst, Register ctx, int field)
    {
        if (field is < 0 or > Size - 8 || field % 8 != 0) throw new ArgumentOutOfRangeException(nameof(field), $"pt_regs has no register at offset {field}");
        return code.LoadMem(MemorySize.DoubleWord, dst, ctx, (short)field);
    }

    /// <summary><c>dst = ctx-&gt;ip</c>.</summary>
    public static InstructionBuilder LoadIp(InstructionBuilder code, Register dst, Register ctx) => Load(code, dst, ctx, Ip);
}
