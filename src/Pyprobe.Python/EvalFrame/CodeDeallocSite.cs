using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// Where code objects die in one binary: the function PyCode_Type's tp_dealloc points at (code_dealloc, static, so
/// absent from a stripped binary's symbols; the type object is exported). The code-object memo forgets an address
/// there (<see cref="CodeObjectMemo"/>), so a later code object at the same address is never named after the freed one.
/// </summary>
public static class CodeDeallocSite
{
    /// <summary>PyTypeObject.tp_dealloc: after the var-object header (24 bytes), tp_name, tp_basicsize and tp_itemsize.</summary>
    private const int TypeDeallocOffset = 48;

    private static readonly byte[] Endbr64 = [0xf3, 0x0f, 0x1e, 0xfa];

    /// <summary>
    /// The file address to probe: tp_dealloc's first instruction, or the one after an endbr64 (which the kernel would
    /// single-step); null when the binary does not say where tp_dealloc is (no PyCode_Type, or a pointer only the
    /// loader resolves).
    /// </summary>
    public static ulong? Find(CPythonBinary binary) => binary.Symbols.CodeType is ulong type ? Find(binary.Elf, type) : null;

    /// <inheritdoc cref="Find(CPythonBinary)"/>
    public static ulong? Find(Usdt.Elf.ElfImage elf) => elf.TryFindUniqueSymbol("PyCode_Type")?.Value is ulong type ? Find(elf, type) : null;

    /// <summary>
    /// The start of a program at the site: the context into R6, pid_tgid into R7 and the dying code object (tp_dealloc's
    /// argument) into <paramref name="codeSlot"/>.
    /// </summary>
    public static void EmitDyingCodeObject(InstructionBuilder code, short codeSlot)
    {
        code.Mov64(Register.R6, Register.R1)
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(Register.R7, Register.R0);
        PtRegs.Load(code, Register.R1, Register.R6, PtRegs.Rdi);
        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeSlot, Register.R1);
    }

    private static ulong? Find(Usdt.Elf.ElfImage elf, ulong type)
    {
        try
        {
            if (elf.TryReadPointer(type + TypeDeallocOffset) is not ulong dealloc || dealloc == 0) return null;
            if (elf.TryVirtualAddressToFileOffset(dealloc, executable: true) is null) return null;
            return elf.ReadVirtual(dealloc, Endbr64.Length).AsSpan().SequenceEqual(Endbr64) ? dealloc + (ulong)Endbr64.Length : dealloc;
        }
        catch (UsdtException)
        {
            return null;
        }
    }
}
