using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.EvalFrame;

/// <summary>Stack slots (u64 each) holding a code object's co_filename and co_qualname (co_name) object pointers.</summary>
public sealed record StrObjectSlots(short Filename, short Name);

/// <summary>
/// The eval-frame programs' memo of names: a direct-mapped table (tgid, code object address) → what the first event of
/// that code object learned (its two strs' addresses and fingerprints, first line, co_flags), so that its next
/// activations send the names as interned strings (address and fingerprint, no bytes:
/// <see cref="Usdt.CodeGen.UsdtEventLayout.InternedLength"/>) after one read, the frame's code object: no read of the
/// code object, of either str, no string copy. On every version 3.8–3.15 that is most of what the program costs.
/// </summary>
/// <remarks>
/// An address names one code object only while it lives: pymalloc hands a freed code object's block, and its strs'
/// blocks, to the next ones (compile or exec in a loop). So an entry is dropped where code objects die
/// (<see cref="DeallocProgram"/> on PyCode_Type's tp_dealloc, see <see cref="CodeDeallocSite"/>), and a process's
/// entries all at once when it runs a new program or exits (<see cref="EpochProgram"/>: the epoch of its tgid moves on,
/// and an entry counts only with the epoch it was made in), since exec keeps the tgid and a new image of the same
/// binary allocates alike; where the session's links run only in the processes they were made for, a process's epoch
/// moves on when it is attached instead of at every exit (<see cref="CodeObjectMemoMaps.Renew"/>). Only the entry program remembers (its activation holds the code object; at a ret it may be
/// freed already). An entry carries its key and a check word (the xor of the rest): a slot is rewritten in place by
/// another CPU, so a torn or foreign value is a miss. Only compact ASCII strs copied whole are remembered: their bytes sit
/// at a fixed offset from the object, and (address, fingerprint) is the key user space knows them by
/// (<see cref="Tracing.SentStrings"/>); the fingerprint is a hash of the bytes themselves, so a string learnt again
/// (a slot lost to another code object) gets the key it had.
/// </remarks>
public static class CodeObjectMemo
{
    /// <summary>The memo's name in the programs: an array of <see cref="Slots"/> values.</summary>
    public const string MapName = "efmemo";

    /// <summary>The epochs' name in the programs: an array of <see cref="EpochSlots"/> u64, by tgid (low bits).</summary>
    public const string EpochsMap = "efepoch";

    /// <summary>Code objects the memo holds at most (a power of two; two that hash alike take turns).</summary>
    public const uint Slots = 32768;

    /// <summary>Epoch slots (a power of two): processes whose tgids share the low bits share an epoch, and forget together.</summary>
    public const uint EpochSlots = 65536;

    /// <summary>u64 code, u32 tgid, u32 co_flags, u32 first line, u32 0, u64 epoch, u64 co_filename, u64 co_qualname, u64 filename fingerprint, u64 name fingerprint, u64 check.</summary>
    public const int ValueSize = 72;

    private const short CodeAt = 0, TgidAt = 8, FlagsAt = 12, FirstLineAt = 16, EpochAt = 24, FilenameAt = 32, NameAt = 40, CheckAt = 64;
    private const int SlotBits = 15;

    /// <summary>Where string <paramref name="index"/>'s fingerprint lies in the value (0: filename, 1: name).</summary>
    public static short FingerprintAt(int index) => (short)(48 + 8 * index);

    /// <summary>The stack slot of the filename's, the name's str object pointer in a value copied to <paramref name="value"/>.</summary>
    public static StrObjectSlots Objects(short value) => new((short)(value + FilenameAt), (short)(value + NameAt));

    /// <summary>The stack slot of co_flags (u32), the first line (u32), in a value copied to <paramref name="value"/>.</summary>
    public static (short Flags, short FirstLine) Fields(short value) => ((short)(value + FlagsAt), (short)(value + FirstLineAt));

    /// <summary>
    /// Writes the slot index of the code object in <paramref name="codeSlot"/> of this process onto the stack and returns
    /// its slot (a multiplicative hash of address and tgid, high bits). Clobbers R1, R2.
    /// </summary>
    public static short EmitIndex(InstructionBuilder code, Register pidTgid, short codeSlot)
    {
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .Rsh64(Register.R1, 4);
        return DirectMappedMemo.EmitIndex(code, pidTgid, 44, SlotBits, "memo index");
    }

    /// <summary>R0 = this process's epoch (a u64 in <see cref="EpochsMap"/>), or jump to <paramref name="missing"/>. Clobbers R0–R5.</summary>
    private static void EmitEpoch(InstructionBuilder code, Register pidTgid, string missing) =>
        DirectMappedMemo.EmitEpoch(code, pidTgid, EpochsMap, EpochSlots, missing);

    /// <summary>
    /// Copies the memo's value for the code object in <paramref name="codeSlot"/> (untagged) onto the stack and returns
    /// its slot when it describes that code object of this process in this epoch, intact; otherwise jumps to
    /// <paramref name="miss"/>. Either way the code object's slot index is left at <paramref name="index"/> (for
    /// <see cref="EmitRemember"/> on a miss). Clobbers R0–R5.
    /// </summary>
    public static short EmitFind(InstructionBuilder code, Register pidTgid, short codeSlot, string miss, out short index)
    {
        index = EmitIndex(code, pidTgid, codeSlot);
        var value = code.Stack.Allocate(ValueSize, "memo value");
        MapLookup.Emit(code, MapName, index, miss);
        // One copy, then every test on the copy: what is sent is what was checked.
        for (short at = 0; at < ValueSize; at += 8)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, at)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + at), Register.R1);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(value + CodeAt))
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, codeSlot)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, (short)(value + TgidAt))
            .Mov64(Register.R2, pidTgid).Rsh64(Register.R2, 32)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        EmitCheckWord(code, value, Register.R1, Register.R2);
        code.LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, (short)(value + CheckAt))
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        EmitEpoch(code, pidTgid, miss);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, (short)(value + EpochAt))
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        return value;
    }

    /// <summary>
    /// Remembers the code object in <paramref name="codeSlot"/> of this process, at the slot <paramref name="index"/>
    /// (<see cref="EmitFind"/>'s): its strs (<paramref name="objects"/>), their fingerprints and its first line (u64 and
    /// u32 fields of the record, via <paramref name="record"/>), its co_flags (a u32 stack slot, or 0 when
    /// <paramref name="flagsSlot"/> is null), in this process's current epoch. Clobbers R0–R5.
    /// </summary>
    public static void EmitRemember(InstructionBuilder code, Register pidTgid, short codeSlot, short index, StrObjectSlots objects, short? flagsSlot,
        Register record, short[] fingerprints, short firstLine)
    {
        var value = code.Stack.Allocate(ValueSize, "memo value");
        var skip = code.Scope("memo")["skip"];
        EmitEpoch(code, pidTgid, skip);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + EpochAt), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + CodeAt), Register.R1)
            .Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, (short)(value + TgidAt), Register.R1)
            .StoreImm(MemorySize.Word, Register.FramePointer, (short)(value + FlagsAt), 0)
            .LoadMem(MemorySize.Word, Register.R1, record, firstLine)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + FirstLineAt), Register.R1);
        if (flagsSlot is short flags)
            code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, flags)
                .StoreMem(MemorySize.Word, Register.FramePointer, (short)(value + FlagsAt), Register.R1);
        foreach (var (at, slot) in new[] { (FilenameAt, objects.Filename), (NameAt, objects.Name) })
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + at), Register.R1);
        for (var i = 0; i < 2; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, record, fingerprints[i])
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + FingerprintAt(i)), Register.R1);
        EmitCheckWord(code, value, Register.R0, Register.R1);
        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + CheckAt), Register.R0)
            .LoadMap(Register.R1, MapName)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, index)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, value)
            .Mov64(Register.R4, 0) // BPF_ANY: the slot's last code object gives way
            .Call(HelperFunction.MapUpdateElem)
            .Label(skip);
    }

    private static void EmitCheckWord(InstructionBuilder code, short value, Register check, Register word) =>
        DirectMappedMemo.EmitCheckWord(code, value, CheckAt, check, word);

    /// <summary>
    /// The uprobe on PyCode_Type's tp_dealloc (<see cref="CodeDeallocSite"/>): the code object in rdi is dying, so its
    /// entry goes (only its own: a slot another code object took is left alone).
    /// </summary>
    public static AssembledProgram DeallocProgram()
    {
        var code = new InstructionBuilder();
        var codeSlot = code.Stack.Allocate(8, "code object");
        CodeDeallocSite.EmitDyingCodeObject(code, codeSlot);
        var index = EmitIndex(code, Register.R7, codeSlot);
        MapLookup.Emit(code, MapName, index, "out")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, CodeAt)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, codeSlot)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, "out")
            // One aligned 8-byte store: a reader sees the old key or none, and without its key the value is a miss.
            .StoreImm(MemorySize.DoubleWord, Register.R0, CodeAt, 0)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>
    /// Raw tracepoint sched_process_exec, or sched_process_exit (<paramref name="leaderOnly"/>: a process ends with its
    /// first thread; another thread's exit changes nothing): the process's epoch moves on (to the time), so none of its
    /// entries counts any more.
    /// </summary>
    public static AssembledProgram EpochProgram(bool leaderOnly)
    {
        var code = new InstructionBuilder();
        code.Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(Register.R6, Register.R0);
        if (leaderOnly)
            code.Mov64(Register.R1, Register.R6).Rsh64(Register.R1, 32)
                .Mov32(Register.R2, Register.R6)
                .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, "out");
        EmitEpoch(code, Register.R6, "out");
        code.Mov64(Register.R7, Register.R0)
            .Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, Register.R7, 0, Register.R0)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }
}
