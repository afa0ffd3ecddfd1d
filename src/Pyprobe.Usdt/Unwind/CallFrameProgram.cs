namespace Pyprobe.Usdt.Unwind;

/// <summary>The rules being built while call frame instructions run; the part of a row that remember_state saves.</summary>
internal struct CallFrameState
{
    public CfaKind Cfa;
    public byte PltThreshold;
    public int CfaRegister;
    public long CfaOffset;
    public RegisterRule ReturnAddress;
    public RegisterRule Rbp;
}

/// <summary>What a CIE says for all its FDEs: alignment factors, the return-address column and the rules it starts with.</summary>
internal sealed record CommonInformation(
    ulong CodeAlignment,
    long DataAlignment,
    int ReturnAddressColumn,
    byte PointerEncoding,
    bool IsSignalFrame,
    bool HasAugmentationData,
    CallFrameState Initial);

/// <summary>
/// Runs DWARF call frame instructions (DWARF 5 §6.4.2, plus the GNU extensions gcc emits) up to a code address and
/// leaves the rules in force there. Only the CFA, the return-address column and rbp are kept; every other register's
/// instruction is decoded and dropped.
/// </summary>
internal static class CallFrameProgram
{
    private const int MaxRememberedStates = 16;

    // The one expression accepted as a CFA: ld's PLT rule, "DW_OP_breg7 (rsp): 8; DW_OP_breg16 (rip): 0; DW_OP_lit15;
    // DW_OP_and; DW_OP_lit11 (or lit10 for -z bndplt/IBT layouts); DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus".
    private static ReadOnlySpan<byte> PltPrefix => [0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a];
    private static ReadOnlySpan<byte> PltSuffix => [0x2a, 0x33, 0x24, 0x22];

    /// <summary>
    /// Runs instructions [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="frame"/> for code starting at
    /// <paramref name="location"/>, stopping before the first advance past <paramref name="target"/>. On return
    /// <paramref name="rowStart"/>/<paramref name="rowEnd"/> bound the addresses the resulting rules hold for
    /// (<paramref name="rowEnd"/> is left as given when no later advance was seen).
    /// </summary>
    public static void Run(ReadOnlySpan<byte> frame, int start, int end, CommonInformation cie, in PointerBases bases,
        ulong location, ulong target, ref CallFrameState state, out ulong rowStart, ref ulong rowEnd)
    {
        Span<CallFrameState> remembered = stackalloc CallFrameState[MaxRememberedStates];
        var depth = 0;
        var reader = new DwarfReader(frame, start);
        rowStart = location;
        while (reader.Position < end)
        {
            var op = reader.U8();
            switch (op >> 6)
            {
                case 1: // DW_CFA_advance_loc
                    if (!Advance(ref location, (ulong)(op & 0x3f) * cie.CodeAlignment, target, ref rowEnd)) return;
                    rowStart = location;
                    continue;
                case 2: // DW_CFA_offset
                    Set(ref state, cie, op & 0x3f, RegisterRule.AtCfa((long)reader.Uleb() * cie.DataAlignment));
                    continue;
                case 3: // DW_CFA_restore
                    Set(ref state, cie, op & 0x3f, InitialRule(cie, op & 0x3f));
                    continue;
            }
            switch (op)
            {
                case 0x00: break; // DW_CFA_nop
                case 0x01: // DW_CFA_set_loc
                    var to = reader.Pointer(cie.PointerEncoding, bases, out _) ?? throw new UnwindFormatException("DW_CFA_set_loc without a usable address");
                    if (to > target) { rowEnd = to; return; }
                    location = to;
                    rowStart = location;
                    break;
                case 0x02 or 0x03 or 0x04: // DW_CFA_advance_loc1, 2, 4: the delta in 1, 2 or 4 bytes
                    var delta = op == 0x02 ? reader.U8() : op == 0x03 ? reader.U16() : reader.U32();
                    if (!Advance(ref location, delta * cie.CodeAlignment, target, ref rowEnd)) return;
                    rowStart = location;
                    break;
                case 0x05: // DW_CFA_offset_extended
                    Set(ref state, cie, Register(ref reader), RegisterRule.AtCfa((long)reader.Uleb() * cie.DataAlignment));
                    break;
                case 0x06: // DW_CFA_restore_extended
                    var restored = Register(ref reader);
                    Set(ref state, cie, restored, InitialRule(cie, restored));
                    break;
                case 0x07: // DW_CFA_undefined
                    Set(ref state, cie, Register(ref reader), RegisterRule.Undefined);
                    break;
                case 0x08: // DW_CFA_same_value
                    Set(ref state, cie, Register(ref reader), RegisterRule.Unchanged);
                    break;
                case 0x09: // DW_CFA_register
                    var saved = Register(ref reader);
                    Set(ref state, cie, saved, new RegisterRule(RegisterRuleKind.InRegister, (long)reader.Uleb()));
                    break;
                case 0x0a: // DW_CFA_remember_state
                    if (depth == MaxRememberedStates) throw new UnwindFormatException("remember_state nested too deeply");
                    remembered[depth++] = state;
                    break;
                case 0x0b: // DW_CFA_restore_state
                    if (depth == 0) throw new UnwindFormatException("restore_state without remember_state");
                    state = remembered[--depth];
                    break;
                case 0x0c: // DW_CFA_def_cfa
                    state.CfaRegister = Register(ref reader);
                    state.CfaOffset = (long)reader.Uleb();
                    state.Cfa = CfaKind.Register;
                    break;
                case 0x0d: // DW_CFA_def_cfa_register: the offset stays
                    state.CfaRegister = Register(ref reader);
                    state.Cfa = CfaKind.Register;
                    break;
                case 0x0e: // DW_CFA_def_cfa_offset: the register (or expression) stays, as readelf and libgcc take it
                    state.CfaOffset = (long)reader.Uleb();
                    break;
                case 0x0f: // DW_CFA_def_cfa_expression
                    var expression = reader.Take(BlockLength(ref reader));
                    state.PltThreshold = PltThreshold(expression);
                    state.Cfa = state.PltThreshold != 0 ? CfaKind.PltExpression : CfaKind.Expression;
                    if (state.Cfa == CfaKind.PltExpression) { state.CfaRegister = DwarfRegister.Rsp; state.CfaOffset = 8; }
                    break;
                case 0x10: // DW_CFA_expression
                case 0x16: // DW_CFA_val_expression
                    var described = Register(ref reader);
                    reader.Take(BlockLength(ref reader));
                    Set(ref state, cie, described, new RegisterRule(RegisterRuleKind.Expression));
                    break;
                case 0x11: // DW_CFA_offset_extended_sf
                    Set(ref state, cie, Register(ref reader), RegisterRule.AtCfa(reader.Sleb() * cie.DataAlignment));
                    break;
                case 0x12: // DW_CFA_def_cfa_sf
                    state.CfaRegister = Register(ref reader);
                    state.CfaOffset = reader.Sleb() * cie.DataAlignment;
                    state.Cfa = CfaKind.Register;
                    break;
                case 0x13: // DW_CFA_def_cfa_offset_sf
                    state.CfaOffset = reader.Sleb() * cie.DataAlignment;
                    break;
                case 0x14: // DW_CFA_val_offset
                    Set(ref state, cie, Register(ref reader), new RegisterRule(RegisterRuleKind.ValueCfaOffset, (long)reader.Uleb() * cie.DataAlignment));
                    break;
                case 0x15: // DW_CFA_val_offset_sf
                    Set(ref state, cie, Register(ref reader), new RegisterRule(RegisterRuleKind.ValueCfaOffset, reader.Sleb() * cie.DataAlignment));
                    break;
                case 0x2e: // DW_CFA_GNU_args_size: only matters to a landing pad
                    reader.Uleb();
                    break;
                case 0x2f: // DW_CFA_GNU_negative_offset_extended
                    Set(ref state, cie, Register(ref reader), RegisterRule.AtCfa(-(long)reader.Uleb() * cie.DataAlignment));
                    break;
                default:
                    throw new UnwindFormatException($"unknown call frame instruction 0x{op:x2}");
            }
        }
    }

    /// <summary>Moves to the next row unless it starts beyond <paramref name="target"/>; then that start ends the current row.</summary>
    private static bool Advance(ref ulong location, ulong by, ulong target, ref ulong rowEnd)
    {
        var next = location + by;
        if (next > target) { rowEnd = next; return false; }
        location = next;
        return true;
    }

    private static int BlockLength(ref DwarfReader reader) => (int)Math.Min(reader.Uleb(), int.MaxValue);

    private static int Register(ref DwarfReader reader) => (int)Math.Min(reader.Uleb(), int.MaxValue);

    private static void Set(ref CallFrameState state, CommonInformation cie, int register, RegisterRule rule)
    {
        if (register == cie.ReturnAddressColumn) state.ReturnAddress = rule;
        else if (register == DwarfRegister.Rbp) state.Rbp = rule;
    }

    /// <summary>The rule a CIE's initial instructions left for a register (DW_CFA_restore goes back to it).</summary>
    private static RegisterRule InitialRule(CommonInformation cie, int register) =>
        register == cie.ReturnAddressColumn ? cie.Initial.ReturnAddress
        : register == DwarfRegister.Rbp ? cie.Initial.Rbp
        : RegisterRule.Unchanged;

    /// <summary>Before any instruction: a return address nobody described is no return address; rbp is callee-saved.</summary>
    public static RegisterRule Unmentioned(int register) =>
        register == DwarfRegister.Rbp ? RegisterRule.Unchanged : RegisterRule.Undefined;

    /// <summary>The rip &amp; 15 threshold if <paramref name="expression"/> is ld's PLT rule, else 0.</summary>
    private static byte PltThreshold(ReadOnlySpan<byte> expression)
    {
        if (expression.Length != PltPrefix.Length + 1 + PltSuffix.Length) return 0;
        if (!expression.StartsWith(PltPrefix) || !expression.EndsWith(PltSuffix)) return 0;
        var literal = expression[PltPrefix.Length];
        return literal is >= 0x30 + 1 and <= 0x30 + 15 ? (byte)(literal - 0x30) : (byte)0; // DW_OP_litN
    }
}
