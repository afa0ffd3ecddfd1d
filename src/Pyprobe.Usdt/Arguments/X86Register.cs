using Pyprobe.Bpf.Emit;

namespace Pyprobe.Usdt;

/// <summary>
/// An x86-64 register as named in a USDT argument. <see cref="PtRegsOffset"/> is
/// offsetof(struct pt_regs, reg) — the byte offset a BPF uprobe program loads it from ctx
/// (kernel-bpf.md §3.6). Sub-registers (eax, ax, al, r8d, …) share the slot of their 64-bit register.
/// </summary>
public sealed record X86Register(string Name, string FullName, int PtRegsOffset, int WidthBytes)
{
    /// <summary>Size of struct pt_regs on x86-64.</summary>
    public const int PtRegsSize = PtRegs.Size;

    private static readonly Dictionary<string, X86Register> ByName = Build();

    /// <summary>Looks up a register name without the '%' (e.g. "eax", "r12d", "sil"); null if unknown.</summary>
    public static X86Register? TryGet(string name) => ByName.GetValueOrDefault(name);

    /// <summary>Every accepted register name (for tests and diagnostics).</summary>
    public static IReadOnlyCollection<X86Register> All => ByName.Values;

    /// <summary>High-byte registers exist on x86 but have no pt_regs slot of their own (the byte is bits 8..15 of the slot).</summary>
    public static bool IsHighByteRegister(string name) => name is "ah" or "bh" or "ch" or "dh";

    private static Dictionary<string, X86Register> Build()
    {
        var d = new Dictionary<string, X86Register>(StringComparer.Ordinal);
        void Add(string full, int off, string r32, string r16, string? r8)
        {
            d[full] = new X86Register(full, full, off, 8);
            d[r32] = new X86Register(r32, full, off, 4);
            d[r16] = new X86Register(r16, full, off, 2);
            if (r8 is not null) d[r8] = new X86Register(r8, full, off, 1);
        }
        Add("r15", PtRegs.R15, "r15d", "r15w", "r15b");
        Add("r14", PtRegs.R14, "r14d", "r14w", "r14b");
        Add("r13", PtRegs.R13, "r13d", "r13w", "r13b");
        Add("r12", PtRegs.R12, "r12d", "r12w", "r12b");
        Add("rbp", PtRegs.Rbp, "ebp", "bp", "bpl");
        Add("rbx", PtRegs.Rbx, "ebx", "bx", "bl");
        Add("r11", PtRegs.R11, "r11d", "r11w", "r11b");
        Add("r10", PtRegs.R10, "r10d", "r10w", "r10b");
        Add("r9", PtRegs.R9, "r9d", "r9w", "r9b");
        Add("r8", PtRegs.R8, "r8d", "r8w", "r8b");
        Add("rax", PtRegs.Rax, "eax", "ax", "al");
        Add("rcx", PtRegs.Rcx, "ecx", "cx", "cl");
        Add("rdx", PtRegs.Rdx, "edx", "dx", "dl");
        Add("rsi", PtRegs.Rsi, "esi", "si", "sil");
        Add("rdi", PtRegs.Rdi, "edi", "di", "dil");
        d["rip"] = new X86Register("rip", "rip", PtRegs.Ip, 8);
        d["eip"] = new X86Register("eip", "rip", PtRegs.Ip, 4);
        Add("rsp", PtRegs.Sp, "esp", "sp", "spl");
        return d;
    }
}
