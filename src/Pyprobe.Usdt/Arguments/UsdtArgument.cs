namespace Pyprobe.Usdt;

/// <summary>
/// One parsed USDT argument ("N@operand"). <see cref="Size"/> is |N| in bytes (1, 2, 4 or 8) and
/// <see cref="Signed"/> is N &lt; 0: the consumer truncates the 64-bit value to Size bytes and
/// sign- or zero-extends it. <see cref="Text"/> is the original spec token. The subclasses are a
/// closed set; switch over them exhaustively.
/// </summary>
public abstract record UsdtArgument(int Size, bool Signed, string Text);

/// <summary>N@$imm — the value is the constant itself.</summary>
public sealed record UsdtConstantArgument(int Size, bool Signed, string Text, long Value)
    : UsdtArgument(Size, Signed, Text);

/// <summary>N@%reg — the value is the register (load ctx + PtRegsOffset).</summary>
public sealed record UsdtRegisterArgument(int Size, bool Signed, string Text, X86Register Register)
    : UsdtArgument(Size, Signed, Text)
{
    public int PtRegsOffset => Register.PtRegsOffset;
}

/// <summary>N@disp(%base) / N@(%base) — the value is Size bytes of user memory at base + Displacement.</summary>
public sealed record UsdtMemoryArgument(int Size, bool Signed, string Text, X86Register Base, long Displacement)
    : UsdtArgument(Size, Signed, Text);

/// <summary>N@disp(%base,%index,scale) — user memory at base + index*Scale + Displacement (Scale 1, 2, 4, 8).</summary>
public sealed record UsdtIndexedArgument(int Size, bool Signed, string Text, X86Register Base, X86Register Index, int Scale, long Displacement)
    : UsdtArgument(Size, Signed, Text)
{
    /// <summary>log2(Scale), handy for a BPF left shift.</summary>
    public int ScaleShift => System.Numerics.BitOperations.Log2((uint)Scale);
}

/// <summary>
/// N@sym(%rip), N@sym+K(%rip), N@sym-K(%rip), N@K+sym(%rip) (GCC's spelling for a constant
/// array index) — user memory at the link-time address of Symbol plus
/// Addend. Resolve with <see cref="UsdtBinary.ResolveRipRelative"/>; at run time the address is
/// ctx->ip + (sym_vaddr + Addend − site vaddr), which needs no load bias (kernel-bpf.md §3.7).
/// </summary>
public sealed record UsdtRipRelativeArgument(int Size, bool Signed, string Text, string Symbol, long Addend)
    : UsdtArgument(Size, Signed, Text);
