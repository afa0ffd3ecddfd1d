namespace Pyprobe.Usdt.Unwind;

/// <summary>The x86-64 DWARF register numbers the unwinder uses (the psABI's table, not the hardware encoding).</summary>
public static class DwarfRegister
{
    public const int Rbp = 6, Rsp = 7, ReturnAddress = 16;
}

/// <summary>How the canonical frame address (the caller's rsp, just above the return address) is found.</summary>
public enum CfaKind : byte
{
    /// <summary>A register (<see cref="UnwindRow.CfaRegister"/>, a DWARF number: 7 rsp, 6 rbp) plus <see cref="UnwindRow.CfaOffset"/>.</summary>
    Register,
    /// <summary>
    /// The expression ld writes for a lazy-binding PLT: rsp + 8, plus 8 more once rip &amp; 15 reaches
    /// <see cref="UnwindRow.PltThreshold"/> (the second half of a 16-byte entry has pushed the relocation index).
    /// </summary>
    PltExpression,
    /// <summary>Any other DWARF expression: not evaluated; an unwind stops here.</summary>
    Expression,
}

/// <summary>Where a caller's register is kept, as DWARF says for one row.</summary>
public enum RegisterRuleKind : byte
{
    /// <summary>Not saved by this frame (DW_CFA_same_value, or never mentioned): the caller's value is the current one.</summary>
    Unchanged,
    /// <summary>DW_CFA_undefined: no caller value. For the return address this marks the outermost frame.</summary>
    Undefined,
    /// <summary>Saved in memory at CFA + <see cref="RegisterRule.Offset"/>.</summary>
    AtCfaOffset,
    /// <summary>The caller's value is CFA + <see cref="RegisterRule.Offset"/> itself (DW_CFA_val_offset).</summary>
    ValueCfaOffset,
    /// <summary>Kept in another register, DWARF number <see cref="RegisterRule.Offset"/> (DW_CFA_register).</summary>
    InRegister,
    /// <summary>DW_CFA_expression or DW_CFA_val_expression: not evaluated.</summary>
    Expression,
}

/// <summary>One register's rule; <see cref="Offset"/> is the CFA offset, or the register for <see cref="RegisterRuleKind.InRegister"/>.</summary>
public readonly record struct RegisterRule(RegisterRuleKind Kind, long Offset = 0)
{
    public static RegisterRule Unchanged => new(RegisterRuleKind.Unchanged);
    public static RegisterRule Undefined => new(RegisterRuleKind.Undefined);
    public static RegisterRule AtCfa(long offset) => new(RegisterRuleKind.AtCfaOffset, offset);

    public override string ToString() => Kind switch
    {
        RegisterRuleKind.AtCfaOffset => $"c{Offset:+0;-0}",
        RegisterRuleKind.ValueCfaOffset => $"v{Offset:+0;-0}",
        RegisterRuleKind.InRegister => $"r{Offset}",
        _ => Kind.ToString(),
    };
}

/// <summary>
/// The unwind rules that hold for code addresses [<see cref="Start"/>, <see cref="End"/>) of one function (link-time
/// addresses): how to find the CFA, the return address and the caller's rbp. Other callee-saved registers are not
/// tracked: nothing after them in an x86-64 unwind needs them.
/// </summary>
public readonly record struct UnwindRow(
    ulong Start,
    ulong End,
    CfaKind Cfa,
    int CfaRegister,
    long CfaOffset,
    byte PltThreshold,
    RegisterRule ReturnAddress,
    RegisterRule Rbp,
    bool IsSignalFrame)
{
    public override string ToString() =>
        $"[0x{Start:x}, 0x{End:x}) CFA={(Cfa switch { CfaKind.Register => $"r{CfaRegister}{CfaOffset:+0;-0}", CfaKind.PltExpression => $"plt(>={PltThreshold})", _ => "exp" })} ra={ReturnAddress} rbp={Rbp}";
}
