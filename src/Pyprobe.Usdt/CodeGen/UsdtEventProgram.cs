using Pyprobe.Bpf.Asm;


namespace Pyprobe.Usdt.CodeGen;

/// <summary>The maps a generated event program writes to.</summary>
/// <param name="RingFd">BPF_MAP_TYPE_RINGBUF the records go to.</param>
/// <param name="ScratchFd">
/// Per-CPU array with one entry of <see cref="UsdtEventProgram.ScratchValueSize"/> bytes: two u64 counters
/// (hits, lost) followed by the record being built, so one lookup serves both.
/// </param>
/// <param name="TargetsFd">Hash map of allowed TGIDs (u32 → u8), or null to accept every process.</param>
/// <param name="Tids">Thread ids to keep (compared in the kernel), or null for every thread.</param>
/// <param name="WakeupThreshold">
/// Bytes waiting in the ring above which a record wakes the reader. Below it records are committed
/// without a wakeup (the reader polls on a short timer): one wakeup per event costs the traced
/// program more than the event itself.
/// </param>
public sealed record UsdtEventMaps(int RingFd, int ScratchFd, int? TargetsFd, IReadOnlyList<int>? Tids = null, int WakeupThreshold = 0);

/// <summary>
/// Generates the program for one group of USDT sites that share an argument spec: it reads every
/// argument, copies the C-string arguments whole, and sends one exactly-sized record to the ring
/// buffer. A record the ring cannot take is counted as lost, never dropped silently.
/// </summary>
public static class UsdtEventProgram
{
    public const int HitsCounterOffset = 0;
    public const int LostCounterOffset = 8;
    private const int RecordOffset = 16;
    private const short KeySlot = -8;
    private const short ArgumentSlot = -16;

    public static int ScratchValueSize(UsdtEventLayout layout) => (RecordOffset + layout.MaxRecordSize + 7) / 8 * 8;

    public static AssembledProgram Generate(UsdtEventLayout layout, IReadOnlyList<UsdtArgument> arguments, UsdtEventMaps maps, ulong siteAddress = 0, Func<string, ulong>? resolveSymbol = null)
    {
        if (arguments.Count < layout.ArgumentCount)
            throw new UsdtException($"the probe has {arguments.Count} arguments, the layout expects {layout.ArgumentCount}");

        var ctx = Register.R6;
        var pidTgid = Register.R7;
        var scratch = Register.R8;
        var stringBytes = Register.R9;
        var code = new InstructionBuilder();

        code.Mov64(ctx, Register.R1)
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(pidTgid, Register.R0);

        if (maps.TargetsFd is int targets)
        {
            code.Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
                .StoreMem(MemorySize.Word, Register.FramePointer, KeySlot, Register.R1)
                .LoadMapFd(Register.R1, targets)
                .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, KeySlot)
                .Call(HelperFunction.MapLookupElem)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, "out");
        }

        if (maps.Tids is { Count: > 0 } tids)
        {
            foreach (var tid in tids) code.JumpIf32(JumpCondition.Equal, pidTgid, tid, "tid_ok");
            code.Jump("out").Label("tid_ok");
        }

        code.StoreImm(MemorySize.Word, Register.FramePointer, KeySlot, 0)
            .LoadMapFd(Register.R1, maps.ScratchFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, KeySlot)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(scratch, Register.R0)
            .Mov64(Register.R1, 1)
            .AtomicAdd64(scratch, HitsCounterOffset, Register.R1);

        code.Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, scratch, Field(UsdtEventLayout.TimestampOffset), Register.R0)
            .Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.TgidOffset), Register.R1)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.TidOffset), pidTgid)
            .Mov64(Register.R1, ctx)
            .Call(HelperFunction.GetAttachCookie)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.ProbeIdOffset), Register.R0)
            .StoreImm(MemorySize.Word, scratch, Field(UsdtEventLayout.TruncatedOffset), 0);

        for (var i = 0; i < layout.ArgumentCount; i++)
        {
            UsdtArgumentEmitter.EmitLoad(code, arguments[i], ctx, ArgumentSlot, siteAddress, resolveSymbol);
            code.StoreMem(MemorySize.DoubleWord, scratch, Field(UsdtEventLayout.ValueOffset(i)), Register.R0);
        }

        code.Mov64(stringBytes, 0);
        for (var j = 0; j < layout.StringArguments.Count; j++)
        {
            if (layout.Interning is null)
            {
                EmitStringCopy(code, layout, j, scratch, stringBytes);
                continue;
            }
            EmitInternCheck(code, layout, j, scratch, pidTgid, copy: $"send{j}", skip: $"sent{j}");
            EmitStringCopy(code, layout, j, scratch, stringBytes);
            code.Label($"sent{j}");
        }

        RingWakeup.EmitFlags(code, maps.RingFd, maps.WakeupThreshold);
        code.LoadMapFd(Register.R1, maps.RingFd)
            .Mov64(Register.R2, scratch).Add64(Register.R2, RecordOffset)
            .Mov64(Register.R3, stringBytes).Add64(Register.R3, layout.StringsOffset)
            .Call(HelperFunction.RingbufOutput)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(Register.R1, 1)
            .AtomicAdd64(scratch, LostCounterOffset, Register.R1);

        code.Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>
    /// For an interned layout: reads the str object's header in front of string <paramref name="index"/>;
    /// if it is a compact ASCII str with a computed hash, records the hash as the fingerprint and looks
    /// (tgid, length, address, hash) up among the strings already sent. Found: the length is set to
    /// <see cref="UsdtEventLayout.InternedLength"/> and the copy is skipped (jump to <paramref name="skip"/>);
    /// otherwise the key is remembered and the string is copied (<paramref name="copy"/>, which must label
    /// the copy code that follows).
    /// </summary>
    private static void EmitInternCheck(InstructionBuilder code, UsdtEventLayout layout, int index, Register scratch, Register pidTgid, string copy, string skip)
    {
        const short header = -48, key = -80, value = -88;
        var interning = layout.Interning!;
        var argument = layout.StringArguments[index];
        var insert = $"remember{index}";
        code.StoreImm(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(index)), 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, header)
            .Mov64(Register.R2, StringInterning.HeaderSize)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Field(UsdtEventLayout.ValueOffset(argument)))
            .Add64(Register.R3, interning.HeaderOffset)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, copy)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, header + 16)
            .And64(Register.R1, (int)interning.CompactAsciiBits)
            .JumpIf(JumpCondition.NotEqual, Register.R1, (int)interning.CompactAsciiBits, copy)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, header)
            .JumpIf(JumpCondition.Greater, Register.R1, UsdtEventLayout.MaxStringLength, copy)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, header + 8)
            .JumpIf(JumpCondition.Equal, Register.R2, -1, copy) // hash never computed
            .JumpIf(JumpCondition.Equal, Register.R2, 0, copy)  // 0 means "no fingerprint" in the record
            .StoreMem(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(index)), Register.R2)
            .Mov64(Register.R3, pidTgid).Rsh64(Register.R3, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, key, Register.R3)
            .StoreMem(MemorySize.Word, Register.FramePointer, key + 4, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Field(UsdtEventLayout.ValueOffset(argument)))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, key + 8, Register.R3)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, key + 16, Register.R2)
            .LoadMapFd(Register.R1, interning.MapFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, insert)
            .StoreImm(MemorySize.HalfWord, scratch, Field(layout.LengthOffset(index)), UsdtEventLayout.InternedLength)
            .Jump(skip)
            .Label(insert)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, value, 1)
            .LoadMapFd(Register.R1, interning.MapFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, value)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .Label(copy);
    }

    /// <summary>
    /// Appends string <paramref name="index"/> after the previous ones. The explicit bounds checks on
    /// R0 are what let the verifier prove every later pointer stays inside the scratch value.
    /// </summary>
    private static void EmitStringCopy(InstructionBuilder code, UsdtEventLayout layout, int index, Register scratch, Register stringBytes)
    {
        var argument = layout.StringArguments[index];
        string empty = $"empty{index}", cut = $"cut{index}", done = $"copied{index}";
        code.Mov64(Register.R1, scratch).Add64(Register.R1, RecordOffset + layout.StringsOffset).Add64(Register.R1, stringBytes)
            // Up to one byte more than is kept, so a string of exactly MaxStringLength bytes (read
            // back as MaxStringLength + 1 with its NUL) is not mistaken for a longer one.
            .Mov64(Register.R2, UsdtEventLayout.MaxStringLength + 2)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Field(UsdtEventLayout.ValueOffset(argument)))
            .Call(HelperFunction.ProbeReadUserStr)
            .JumpIf(JumpCondition.SignedLess, Register.R0, 1, empty)
            .JumpIf(JumpCondition.SignedGreater, Register.R0, UsdtEventLayout.MaxStringLength + 1, cut)
            .Sub64(Register.R0, 1) // drop the NUL
            .Jump(done)
            .Label(cut)
            .Mov64(Register.R0, UsdtEventLayout.MaxStringLength)
            .LoadMem(MemorySize.Word, Register.R1, scratch, Field(UsdtEventLayout.TruncatedOffset))
            .Or64(Register.R1, 1 << index)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.TruncatedOffset), Register.R1)
            .Jump(done)
            .Label(empty)
            .Mov64(Register.R0, 0)
            .Label(done)
            .StoreMem(MemorySize.HalfWord, scratch, Field(layout.LengthOffset(index)), Register.R0)
            .Add64(stringBytes, Register.R0);
    }

    private static short Field(int recordOffset) => (short)(RecordOffset + recordOffset);
}
