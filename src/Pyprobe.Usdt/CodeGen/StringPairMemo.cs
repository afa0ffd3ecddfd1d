using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// A memo for probes whose two string arguments always come as a pair (a function's file and name): a direct-mapped
/// array (tgid, first address, second address) → the two strings' fingerprints (<see cref="BytesFingerprint"/>), so a
/// pair seen before is sent by reference (<see cref="UsdtEventLayout.InternedLength"/>) with no read of the target at
/// all, where copying both names costs most of an event. Unlike <see cref="StringInterning"/>, which reads each string's
/// header on every event to prove the address still holds that string, the memo reads nothing on a hit, so it is only
/// right while the strings live, and whoever owns
/// them must say when they may die: <see cref="EmitForget"/> drops a pair (CPython: where a code object, which holds
/// both, is freed), and an epoch per process (tgid, low bits; a u64 that changes at exec and exit) retires all of a
/// process's pairs at once (the session that owns the epochs may also move one on when it attaches a process). An entry carries its key and a check word (the xor of the rest), so a slot another CPU is
/// rewriting reads as a miss.
/// </summary>
/// <param name="MapFd">The memo: an array of <see cref="Slots"/> values of <see cref="ValueSize"/> bytes.</param>
/// <param name="EpochsFd">The epochs: an array of <paramref name="EpochSlots"/> u64, by tgid &amp; (EpochSlots − 1).</param>
/// <param name="EpochSlots">A power of two.</param>
/// <param name="HeaderOffset">Where a compact ASCII str's length lies from its first byte (negative): length, hash, state follow.</param>
/// <param name="CompactAsciiBits">The state bits of a compact ASCII str. Only such strings are remembered: their bytes lie
/// in the object, where the owner's forgetting program finds them from the object.</param>
public sealed record StringPairMemo(int MapFd, int EpochsFd, uint EpochSlots, int HeaderOffset, uint CompactAsciiBits)
{
    /// <summary>The memo's name in the programs.</summary>
    public const string MapName = "pairmemo";

    /// <summary>The epochs' name in the programs.</summary>
    public const string EpochsMap = "pairepoch";

    /// <summary>Pairs held at most (a power of two; two that hash alike take turns).</summary>
    public const uint Slots = 32768;

    private const int SlotBits = 15;

    /// <summary>u64 first address, u64 second address, u32 tgid, u32 0, u64 epoch, u64 first fingerprint, u64 second fingerprint, u64 check.</summary>
    public const int ValueSize = 56;

    private const short FirstAt = 0, SecondAt = 8, TgidAt = 16, EpochAt = 24, FingerprintsAt = 32, CheckAt = 48;

    /// <summary>
    /// Writes the slot index of the pair (<paramref name="first"/>, <paramref name="second"/>: registers) of this
    /// process onto the stack and returns its stack slot. Clobbers R1, R2.
    /// </summary>
    public static short EmitIndex(InstructionBuilder code, Register pidTgid, Register first, Register second)
    {
        var index = code.Stack.Allocate(4, "pair index");
        EmitIndexAt(code, pidTgid, first, second, Register.FramePointer, index);
        return index;
    }

    /// <summary>As <see cref="EmitIndex"/>, with the index stored as a u32 at <paramref name="at"/> from <paramref name="area"/>.</summary>
    private static void EmitIndexAt(InstructionBuilder code, Register pidTgid, Register first, Register second, Register area, short at)
    {
        code.Mov64(Register.R1, second).Lsh64(Register.R1, 17)
            .Xor64(Register.R1, first);
        DirectMappedMemo.EmitIndexAt(code, pidTgid, 47, SlotBits, area, at);
    }

    /// <summary>
    /// Bytes of a map value <see cref="EmitFind"/> and <see cref="EmitRemember"/> work in: the slot index and the epoch's
    /// key (u32 each), then a copy of the slot's value. In the scratch value the program writes anyway rather than on the
    /// stack: with the scratch found without a key (<see cref="CpuScratch"/>), a hit touches no stack page at all, and
    /// on a guest whose trap leaves every page cold each page a program touches costs (docs/facts.md).
    /// </summary>
    public const int WorkBytes = 8 + ValueSize;

    private const short IndexAt = 0, EpochKeyAt = 4, CopyAt = 8;

    /// <summary>
    /// Looks the pair at record fields <paramref name="firstField"/> and <paramref name="secondField"/> (u64 addresses,
    /// offsets from <paramref name="scratch"/>) up; found intact, for this process, in its epoch: copies the two
    /// fingerprints to <paramref name="fingerprintFields"/> and falls through; otherwise jumps to <paramref name="miss"/>,
    /// the pair's slot index left in the work area for <see cref="EmitRemember"/>. The work area is
    /// <see cref="WorkBytes"/> bytes at <paramref name="workAt"/> from <paramref name="scratch"/>. Clobbers R0–R5.
    /// </summary>
    public void EmitFind(InstructionBuilder code, Register pidTgid, Register scratch, short firstField, short secondField, short[] fingerprintFields, short workAt, string miss)
    {
        short index = (short)(workAt + IndexAt), value = (short)(workAt + CopyAt);
        code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, firstField)
            .LoadMem(MemorySize.DoubleWord, Register.R4, scratch, secondField);
        EmitIndexAt(code, pidTgid, Register.R3, Register.R4, scratch, index);
        MapLookup.Emit(code, MapName, scratch, index, miss);
        // One copy, then every test on the copy: what is sent is what was checked.
        for (short at = 0; at < ValueSize; at += 8)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, at)
                .StoreMem(MemorySize.DoubleWord, scratch, (short)(value + at), Register.R1);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, (short)(value + FirstAt))
            .JumpIf(JumpCondition.Equal, Register.R1, 0, miss)
            .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, firstField)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, (short)(value + SecondAt))
            .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, secondField)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss)
            .LoadMem(MemorySize.Word, Register.R1, scratch, (short)(value + TgidAt))
            .Mov64(Register.R2, pidTgid).Rsh64(Register.R2, 32)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        DirectMappedMemo.EmitCheckWord(code, scratch, value, CheckAt, Register.R1, Register.R2);
        code.LoadMem(MemorySize.DoubleWord, Register.R2, scratch, (short)(value + CheckAt))
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        DirectMappedMemo.EmitEpochAt(code, pidTgid, EpochsMap, EpochSlots, miss, scratch, (short)(workAt + EpochKeyAt));
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, (short)(value + EpochAt))
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        for (var i = 0; i < 2; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, (short)(value + FingerprintsAt + 8 * i))
                .StoreMem(MemorySize.DoubleWord, scratch, fingerprintFields[i], Register.R1);
    }

    /// <summary>
    /// Remembers the pair at the record's fields with the fingerprints the record carries, when both have one (strings
    /// without a fingerprint are sent whole every time), at the slot index <see cref="EmitFind"/> left in the work area
    /// at <paramref name="workAt"/>, in this process's current epoch. Clobbers R0–R5.
    /// </summary>
    public void EmitRemember(InstructionBuilder code, Register pidTgid, Register scratch, short firstField, short secondField, short[] fingerprintFields, short workAt)
    {
        var value = (short)(workAt + CopyAt);
        var skip = code.Scope("pair")["skip"];
        for (var i = 0; i < 2; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, fingerprintFields[i])
                .JumpIf(JumpCondition.Equal, Register.R1, 0, skip)
                .StoreMem(MemorySize.DoubleWord, scratch, (short)(value + FingerprintsAt + 8 * i), Register.R1);
        DirectMappedMemo.EmitEpochAt(code, pidTgid, EpochsMap, EpochSlots, skip, scratch, (short)(workAt + EpochKeyAt));
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .StoreMem(MemorySize.DoubleWord, scratch, (short)(value + EpochAt), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, firstField)
            .StoreMem(MemorySize.DoubleWord, scratch, (short)(value + FirstAt), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, secondField)
            .StoreMem(MemorySize.DoubleWord, scratch, (short)(value + SecondAt), Register.R1)
            .Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.DoubleWord, scratch, (short)(value + TgidAt), Register.R1);
        DirectMappedMemo.EmitCheckWord(code, scratch, value, CheckAt, Register.R0, Register.R1);
        code.StoreMem(MemorySize.DoubleWord, scratch, (short)(value + CheckAt), Register.R0)
            .LoadMap(Register.R1, MapName)
            .Mov64(Register.R2, scratch).Add64(Register.R2, workAt + IndexAt)
            .Mov64(Register.R3, scratch).Add64(Register.R3, value)
            .Mov64(Register.R4, 0) // BPF_ANY: the slot's last pair gives way
            .Call(HelperFunction.MapUpdateElem)
            .Label(skip);
    }

    /// <summary>
    /// Drops the pair (<paramref name="first"/>, <paramref name="second"/>: stack slots of u64 addresses) of this process
    /// if the memo holds it (a slot another pair took is left alone), then jumps to <paramref name="done"/>. Clobbers R0–R5.
    /// </summary>
    public static void EmitForget(InstructionBuilder code, Register pidTgid, short first, short second, string done)
    {
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, first)
            .LoadMem(MemorySize.DoubleWord, Register.R4, Register.FramePointer, second);
        var index = EmitIndex(code, pidTgid, Register.R3, Register.R4);
        MapLookup.Emit(code, MapName, index, done)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, FirstAt)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, first)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, done)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, SecondAt)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, second)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, done)
            // One aligned 8-byte store: a reader sees the old key or none, and without its key the value is a miss.
            // (The tgid is not compared: a pair of another process that hashes here with the same addresses is
            // relearnt, never misnamed.)
            .StoreImm(MemorySize.DoubleWord, Register.R0, FirstAt, 0)
            .Jump(done);
    }
}
