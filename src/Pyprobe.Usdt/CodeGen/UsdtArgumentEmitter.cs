using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;


namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// Emits the BPF instructions that fetch one USDT argument into a register. Register arguments are
/// constant-offset loads from pt_regs (the verifier forbids variable ctx offsets, which is why libbpf
/// needs a spec map and we do not); memory forms go through bpf_probe_read_user.
/// </summary>
public static class UsdtArgumentEmitter
{
    /// <summary>
    /// Leaves the argument, sign- or zero-extended to 64 bits, in R0. Clobbers R0–R5 and the 8 stack
    /// bytes at <paramref name="scratchStackOffset"/>. <paramref name="context"/> must hold ctx (callee-saved).
    /// <paramref name="siteAddress"/> is the probe's link-time address, needed only for %rip-relative forms.
    /// </summary>
    public static void EmitLoad(InstructionBuilder code, UsdtArgument argument, Register context, short scratchStackOffset, ulong siteAddress, Func<string, ulong>? resolveSymbol = null)
    {
        switch (argument)
        {
            case UsdtConstantArgument constant:
                code.LoadImm64(Register.R0, constant.Value);
                break;
            case UsdtRegisterArgument register:
                code.LoadMem(MemorySize.DoubleWord, Register.R0, context, (short)register.PtRegsOffset);
                break;
            case UsdtMemoryArgument memory:
                code.LoadMem(MemorySize.DoubleWord, Register.R3, context, (short)memory.Base.PtRegsOffset);
                AddConstant(code, Register.R3, memory.Displacement);
                EmitUserRead(code, argument.Size, scratchStackOffset);
                break;
            case UsdtIndexedArgument indexed:
                code.LoadMem(MemorySize.DoubleWord, Register.R3, context, (short)indexed.Base.PtRegsOffset);
                code.LoadMem(MemorySize.DoubleWord, Register.R4, context, (short)indexed.Index.PtRegsOffset);
                if (indexed.ScaleShift > 0) code.Lsh64(Register.R4, indexed.ScaleShift);
                code.Add64(Register.R3, Register.R4);
                AddConstant(code, Register.R3, indexed.Displacement);
                EmitUserRead(code, argument.Size, scratchStackOffset);
                break;
            case UsdtRipRelativeArgument ripRelative:
                if (resolveSymbol is null) throw new UsdtException($"argument '{argument.Text}' needs the binary's symbols to resolve '{ripRelative.Symbol}'");
                // At the probe, ip is the runtime address of the site: the symbol lies a link-time distance away.
                var distance = (long)(resolveSymbol(ripRelative.Symbol) + (ulong)ripRelative.Addend - siteAddress);
                PtRegs.LoadIp(code, Register.R3, context);
                AddConstant(code, Register.R3, distance);
                EmitUserRead(code, argument.Size, scratchStackOffset);
                break;
            default:
                throw new UsdtException($"unsupported USDT argument form '{argument.Text}'");
        }
        EmitExtend(code, argument.Size, argument.Signed);
    }

    /// <summary>Reads exactly <paramref name="size"/> bytes at R3 into a zeroed stack slot, then loads the slot into R0.</summary>
    private static void EmitUserRead(InstructionBuilder code, int size, short stackOffset)
    {
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, stackOffset, 0)
            .Mov64(Register.R1, Register.FramePointer)
            .Add64(Register.R1, stackOffset)
            .Mov64(Register.R2, Math.Abs(size))
            .Call(HelperFunction.ProbeReadUser)
            .LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, stackOffset);
    }

    /// <summary>Keeps the low <paramref name="size"/> bytes and extends them, like libbpf's arg_bitshift.</summary>
    private static void EmitExtend(InstructionBuilder code, int size, bool signed)
    {
        var shift = 64 - 8 * Math.Abs(size);
        if (shift == 0) return;
        code.Lsh64(Register.R0, shift);
        if (signed) code.Arsh64(Register.R0, shift);
        else code.Rsh64(Register.R0, shift);
    }

    private static void AddConstant(InstructionBuilder code, Register register, long value)
    {
        if (value == 0) return;
        if (value is >= int.MinValue and <= int.MaxValue)
        {
            code.Add64(register, (int)value);
            return;
        }
        code.LoadImm64(Register.R4, value).Add64(register, Register.R4);
    }
}
