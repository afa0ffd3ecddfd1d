using Pyprobe.Bpf.Asm;
using Pyprobe.Usdt;
using Pyprobe.Usdt.CodeGen;
using static Pyprobe.Python.Analysis.CallStatsLayout;

namespace Pyprobe.Python.Analysis;

/// <summary>The maps the generated call-statistics programs use.</summary>
/// <param name="StacksFd">LRU hash: u32 tid → thread stack (<see cref="CallStatsLayout"/>).</param>
/// <param name="StatsFd">Per-CPU hash: 24-byte key → stats value.</param>
/// <param name="ZeroFd">Array with one all-zero entry, the initial value for new stacks and stats.</param>
/// <param name="ScratchFd">Per-CPU array with one entry: counters, then the name record being built.</param>
/// <param name="RingFd">Ring buffer for name records.</param>
/// <param name="PidsFd">Hash of allowed tgids (u32 → u8), or null for every process.</param>
public sealed record CallStatsMaps(int StacksFd, int StatsFd, int ZeroFd, int ScratchFd, int RingFd, int? PidsFd);

/// <summary>What a generated program does at its probe.</summary>
public enum CallStatsProbeKind
{
    /// <summary>function__entry: push a frame on the thread's stack.</summary>
    Entry,
    /// <summary>function__return with entries available: pop the matching frame and account its duration.</summary>
    TimedReturn,
    /// <summary>function__return without entries (3.11 without the gate): count the call, no time.</summary>
    CountingReturn,
}

/// <summary>
/// Generates the programs behind <see cref="CallStatsSession"/>. Everything is aggregated in the kernel; only
/// a function's names travel to user space, once, when its stats entry is created.
/// </summary>
/// <remarks>
/// Return matching: the returning (filename, funcname) pointers are compared with the top frame and, if that
/// differs, with up to <see cref="MatchWindow"/>-1 frames below it (unrolled, no loops). On a match the frames
/// above it are discarded (3.15 generator creation pushes an ENTRY that never returns) and their callee time is
/// credited to the matched frame; with no match the stack is left alone and the call is counted without a time
/// (3.15 throw() returns without an entry; calls already running at attach time). Frames deeper than
/// the stack size only move the depth counter, and their returns are counted without a time.
/// </remarks>
public static class CallStatsProgram
{
    /// <summary>How many frames from the top a return is compared with.</summary>
    public const int MatchWindow = 4;

    private const int NoExist = 1; // BPF_NOEXIST

    private const short SlotZeroKey = -8;
    private const short SlotLoad = -16;
    private const short SlotFilename = -24;
    private const short SlotFuncname = -32;
    private const short SlotLine = -40;
    private const short SlotNow = -48;
    private const short SlotDuration = -56;
    private const short SlotSelf = -64;
    private const short SlotTimed = -72;
    private const short SlotTid = -80;
    private const short SlotDiscarded = -88;
    private const short SlotKey = -112; // 24 bytes: -112 pid, -108 line, -104 filename, -96 funcname

    private static readonly Register Ctx = Register.R6;
    private static readonly Register PidTgid = Register.R7;

    public static AssembledProgram Generate(CallStatsProbeKind kind, IReadOnlyList<UsdtArgument> arguments, CallStatsMaps maps, int maxFrames, ulong siteAddress = 0, Func<string, ulong>? resolveSymbol = null)
    {
        if (arguments.Count < 3) throw new UsdtException($"function probes have 3 arguments, this site has {arguments.Count}");
        if (maxFrames is < MatchWindow or > 1024) throw new ArgumentOutOfRangeException(nameof(maxFrames), "stack size must be between 4 and 1024 frames");
        var code = new InstructionBuilder();
        code.Mov64(Ctx, Register.R1)
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(PidTgid, Register.R0);

        if (maps.PidsFd is int pids)
        {
            code.Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
                .StoreMem(MemorySize.Word, Register.FramePointer, SlotTid, Register.R1)
                .LoadMapFd(Register.R1, pids)
                .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotTid)
                .Call(HelperFunction.MapLookupElem)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, "out");
        }

        if (kind == CallStatsProbeKind.TimedReturn)
            code.Call(HelperFunction.KtimeGetNs).StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotNow, Register.R0);

        var slots = new[] { SlotFilename, SlotFuncname, SlotLine };
        for (var i = 0; i < 3; i++)
        {
            UsdtArgumentEmitter.EmitLoad(code, arguments[i], Ctx, SlotLoad, siteAddress, resolveSymbol);
            code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots[i], Register.R0);
        }
        code.StoreImm(MemorySize.Word, Register.FramePointer, SlotZeroKey, 0)
            .Mov32(Register.R1, PidTgid)
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotTid, Register.R1);

        switch (kind)
        {
            case CallStatsProbeKind.Entry:
                EmitEntry(code, maps, maxFrames);
                break;
            case CallStatsProbeKind.TimedReturn:
                EmitTimedReturn(code, maps, maxFrames);
                EmitAccount(code, maps);
                break;
            default:
                EmitUntimedKey(code);
                EmitAccount(code, maps);
                break;
        }

        code.Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>Finds or creates the calling thread's stack; leaves it in R8, or jumps to <paramref name="missing"/>.</summary>
    private static void EmitStackLookup(InstructionBuilder code, CallStatsMaps maps, bool create, string missing)
    {
        code.LoadMapFd(Register.R1, maps.StacksFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotTid)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "have_stack");
        if (create)
        {
            EmitZeroLookup(code, maps, "out");
            code.Mov64(Register.R3, Register.R0)
                .LoadMapFd(Register.R1, maps.StacksFd)
                .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotTid)
                .Mov64(Register.R4, NoExist)
                .Call(HelperFunction.MapUpdateElem)
                .LoadMapFd(Register.R1, maps.StacksFd)
                .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotTid)
                .Call(HelperFunction.MapLookupElem)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "have_stack");
            EmitCount(code, maps, NoStackCounter);
        }
        code.Jump(missing)
            .Label("have_stack")
            .Mov64(Register.R8, Register.R0);
    }

    private static void EmitEntry(InstructionBuilder code, CallStatsMaps maps, int maxFrames)
    {
        EmitStackLookup(code, maps, create: true, "out");
        code.LoadMem(MemorySize.Word, Register.R2, Register.R8, 0)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R2, maxFrames, "entry_overflow")
            .Mov64(Register.R9, Register.R2).Mul64(Register.R9, FrameSize).Add64(Register.R9, Register.R8)
            .Add64(Register.R2, 1)
            .StoreMem(MemorySize.Word, Register.R8, 0, Register.R2)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFilename)
            .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameFilenameOffset), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFuncname)
            .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameFuncnameOffset), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotLine)
            .StoreMem(MemorySize.Word, Register.R9, Frame(FrameLineOffset), Register.R1)
            .StoreImm(MemorySize.DoubleWord, Register.R9, Frame(FrameChildOffset), 0)
            // The timestamp comes last so the probe's own cost is charged to the caller, not the callee.
            .Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameEntryOffset), Register.R0)
            .Jump("out")
            .Label("entry_overflow")
            // Deeper than the stack: only the depth moves (capped so a runaway count cannot wrap).
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R2, 1 << 30, "out")
            .Add64(Register.R2, 1)
            .StoreMem(MemorySize.Word, Register.R8, 0, Register.R2);
        EmitCount(code, maps, OverflowEntriesCounter);
        code.Jump("out");
    }

    private static void EmitTimedReturn(InstructionBuilder code, CallStatsMaps maps, int maxFrames)
    {
        EmitStackLookup(code, maps, create: false, "unmatched");
        code.LoadMem(MemorySize.Word, Register.R2, Register.R8, 0)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, "unmatched")
            .JumpIf(JumpCondition.Greater, Register.R2, maxFrames, "return_overflow")
            .Mov64(Register.R1, 0) // callee time of discarded frames
            .LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, SlotFilename)
            .LoadMem(MemorySize.DoubleWord, Register.R9, Register.FramePointer, SlotFuncname);
        for (var k = 0; k < MatchWindow; k++)
        {
            if (k > 0) code.JumpIf(JumpCondition.LessOrEqual, Register.R2, k, "unmatched");
            code.Mov64(Register.R3, Register.R2).Sub64(Register.R3, k + 1)
                .Mov64(Register.R4, Register.R3).Mul64(Register.R4, FrameSize).Add64(Register.R4, Register.R8)
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameFilenameOffset))
                .JumpIf(JumpCondition.NotEqual, Register.R5, Register.R0, $"next{k}")
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameFuncnameOffset))
                .JumpIf(JumpCondition.Equal, Register.R5, Register.R9, "matched")
                .Label($"next{k}")
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameChildOffset))
                .Add64(Register.R1, Register.R5);
        }
        code.Jump("unmatched");

        // R2 = depth before, R3 = index of the matched frame (= new depth), R4 = that frame, R1 = discarded callee time.
        code.Label("matched")
            .StoreMem(MemorySize.Word, Register.R8, 0, Register.R3)
            .Mov64(Register.R5, Register.R2).Sub64(Register.R5, Register.R3).Sub64(Register.R5, 1)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotDiscarded, Register.R5)
            .LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, SlotNow)
            .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameEntryOffset))
            .Sub64(Register.R0, Register.R5)
            .JumpIf(JumpCondition.SignedGreater, Register.R0, 0, "duration_ok")
            .Mov64(Register.R0, 1) // keep 0 free as "no minimum yet"
            .Label("duration_ok")
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotDuration, Register.R0)
            .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameChildOffset))
            .Add64(Register.R5, Register.R1)
            .Mov64(Register.R1, Register.R0).Sub64(Register.R1, Register.R5)
            .JumpIf(JumpCondition.SignedGreaterOrEqual, Register.R1, 0, "self_ok")
            .Mov64(Register.R1, 0)
            .Label("self_ok")
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotSelf, Register.R1)
            .Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotKey + KeyPidOffset, Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, Register.R4, Frame(FrameLineOffset))
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotKey + KeyLineOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R4, Frame(FrameFilenameOffset))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotKey + KeyFilenameOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R4, Frame(FrameFuncnameOffset))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotKey + KeyFuncnameOffset, Register.R1)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotTimed, 1)
            // The caller's frame (if stored) learns how long this callee took.
            .JumpIf(JumpCondition.Less, Register.R3, 1, "parent_done")
            .Sub64(Register.R3, 1).Mul64(Register.R3, FrameSize).Add64(Register.R3, Register.R8)
            .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R3, Frame(FrameChildOffset))
            .Add64(Register.R5, Register.R0)
            .StoreMem(MemorySize.DoubleWord, Register.R3, Frame(FrameChildOffset), Register.R5)
            .Label("parent_done")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotDiscarded)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, "account");
        EmitCount(code, maps, DiscardedFramesCounter, SlotDiscarded);
        code.Jump("account");

        code.Label("return_overflow")
            .Sub64(Register.R2, 1)
            .StoreMem(MemorySize.Word, Register.R8, 0, Register.R2)
            .Jump("untimed")
            .Label("unmatched");
        EmitCount(code, maps, UnmatchedReturnsCounter);
        EmitUntimedKey(code);
    }

    /// <summary>Key from the return's own arguments (first line unknown), no duration.</summary>
    private static void EmitUntimedKey(InstructionBuilder code)
    {
        code.Label("untimed")
            .Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotKey + KeyPidOffset, Register.R1)
            .StoreImm(MemorySize.Word, Register.FramePointer, SlotKey + KeyLineOffset, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFilename)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotKey + KeyFilenameOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFuncname)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotKey + KeyFuncnameOffset, Register.R1)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotTimed, 0)
            .Jump("account");
    }

    /// <summary>
    /// Adds the call (key at SlotKey, duration/self at their slots when SlotTimed is 1) to the per-CPU stats,
    /// creating the entry, and sending the names, the first time the key is seen.
    /// </summary>
    private static void EmitAccount(InstructionBuilder code, CallStatsMaps maps)
    {
        code.Label("account")
            .LoadMapFd(Register.R1, maps.StatsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "have_stats");
        EmitZeroLookup(code, maps, "out");
        code.Mov64(Register.R3, Register.R0)
            .LoadMapFd(Register.R1, maps.StatsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Mov64(Register.R4, NoExist)
            .Call(HelperFunction.MapUpdateElem)
            // Only the program that created the entry sends the names (another CPU may have won the race).
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "relookup");
        EmitNameRecord(code, maps);
        code.Label("relookup")
            .LoadMapFd(Register.R1, maps.StatsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "have_stats");
        EmitCount(code, maps, StatsFullCounter);
        code.Jump("out");

        var stats = Register.R8;
        code.Label("have_stats")
            .Mov64(stats, Register.R0)
            .Mov64(Register.R1, 1)
            .AtomicAdd64(stats, CallsOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotTimed)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, "out")
            .AtomicAdd64(stats, TimedOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotSelf)
            .AtomicAdd64(stats, SelfOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotDuration)
            .AtomicAdd64(stats, TotalOffset, Register.R1)
            // min/max: plain read-compare-write on this CPU's copy (see CallStatsSession remarks).
            .LoadMem(MemorySize.DoubleWord, Register.R2, stats, MinOffset)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, "set_min")
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, Register.R2, "min_done")
            .Label("set_min")
            .StoreMem(MemorySize.DoubleWord, stats, MinOffset, Register.R1)
            .Label("min_done")
            .LoadMem(MemorySize.DoubleWord, Register.R2, stats, MaxOffset)
            .JumpIf(JumpCondition.LessOrEqual, Register.R1, Register.R2, "max_done")
            .StoreMem(MemorySize.DoubleWord, stats, MaxOffset, Register.R1)
            .Label("max_done");

        // Histogram bucket: floor(log2(d)) by an unrolled binary search (R2), then 2 more bits for the sub-bucket.
        code.Mov64(Register.R3, Register.R1).Mov64(Register.R2, 0);
        foreach (var step in new[] { 32, 16, 8, 4, 2, 1 })
        {
            code.Mov64(Register.R4, Register.R3).Rsh64(Register.R4, step)
                .JumpIf(JumpCondition.Equal, Register.R4, 0, $"log{step}")
                .Mov64(Register.R3, Register.R4).Add64(Register.R2, step)
                .Label($"log{step}");
        }
        code.Mov64(Register.R3, Register.R1)
            .JumpIf(JumpCondition.Less, Register.R1, 4, "bucket_ready")
            .Mov64(Register.R3, BucketCount - 1)
            .JumpIf(JumpCondition.Greater, Register.R2, HighestExponent, "bucket_ready")
            .Mov64(Register.R4, Register.R2).Sub64(Register.R4, SubBucketsLog2)
            .Mov64(Register.R3, Register.R1).Rsh64(Register.R3, Register.R4).And64(Register.R3, 3)
            .Lsh64(Register.R2, 2).Sub64(Register.R2, 4).Add64(Register.R3, Register.R2)
            .Label("bucket_ready")
            .JumpIf(JumpCondition.LessOrEqual, Register.R3, BucketCount - 1, "bucket_bounded")
            .Mov64(Register.R3, BucketCount - 1)
            .Label("bucket_bounded")
            .Lsh64(Register.R3, 3)
            .Add64(stats, Register.R3)
            .Mov64(Register.R1, 1)
            .AtomicAdd64(stats, HistogramOffset, Register.R1)
            .Jump("out");
    }

    /// <summary>Sends key + both strings (read from the key's pointers) to the ring; a full ring is counted.</summary>
    private static void EmitNameRecord(InstructionBuilder code, CallStatsMaps maps)
    {
        var scratch = Register.R8;
        var bytes = Register.R9;
        code.LoadMapFd(Register.R1, maps.ScratchFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotZeroKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "relookup")
            .Mov64(scratch, Register.R0);
        for (var offset = 0; offset < KeySize; offset += 8)
        {
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(SlotKey + offset))
                .StoreMem(MemorySize.DoubleWord, scratch, Record(offset), Register.R1);
        }
        code.StoreImm(MemorySize.Word, scratch, Record(NameLengthsOffset), 0)
            .StoreImm(MemorySize.Word, scratch, Record(NameTruncatedOffset), 0)
            .Mov64(bytes, 0);
        EmitStringCopy(code, 0, KeyFilenameOffset, scratch, bytes);
        EmitStringCopy(code, 1, KeyFuncnameOffset, scratch, bytes);
        code.LoadMapFd(Register.R1, maps.RingFd)
            .Mov64(Register.R2, scratch).Add64(Register.R2, ScratchRecordOffset)
            .Mov64(Register.R3, bytes).Add64(Register.R3, NameStringsOffset)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.RingbufOutput)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "relookup")
            .Mov64(Register.R1, 1)
            .AtomicAdd64(scratch, LostNamesCounter, Register.R1);
    }

    /// <summary>The verifier-friendly copy of <c>UsdtEventProgram</c>: explicit bounds on R0 keep every pointer inside the scratch value.</summary>
    private static void EmitStringCopy(InstructionBuilder code, int index, int pointerOffset, Register scratch, Register bytes)
    {
        string empty = $"name_empty{index}", cut = $"name_cut{index}", done = $"name_copied{index}";
        code.Mov64(Register.R1, scratch).Add64(Register.R1, ScratchRecordOffset + NameStringsOffset).Add64(Register.R1, bytes)
            .Mov64(Register.R2, MaxNameLength + 1)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Record(pointerOffset))
            .Call(HelperFunction.ProbeReadUserStr)
            .JumpIf(JumpCondition.SignedLess, Register.R0, 1, empty)
            .JumpIf(JumpCondition.SignedGreater, Register.R0, MaxNameLength, cut)
            .Sub64(Register.R0, 1)
            .Jump(done)
            .Label(cut)
            .Mov64(Register.R0, MaxNameLength)
            .LoadMem(MemorySize.Word, Register.R1, scratch, Record(NameTruncatedOffset))
            .Or64(Register.R1, 1 << index)
            .StoreMem(MemorySize.Word, scratch, Record(NameTruncatedOffset), Register.R1)
            .Jump(done)
            .Label(empty)
            .Mov64(Register.R0, 0)
            .Label(done)
            .StoreMem(MemorySize.HalfWord, scratch, Record(NameLengthsOffset + 2 * index), Register.R0)
            .Add64(bytes, Register.R0);
    }

    /// <summary>R0 = the all-zero value, or jump to <paramref name="missing"/>. Clobbers R0–R5.</summary>
    private static void EmitZeroLookup(InstructionBuilder code, CallStatsMaps maps, string missing) =>
        code.LoadMapFd(Register.R1, maps.ZeroFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotZeroKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, missing);

    /// <summary>Adds 1 (or the u64 in <paramref name="amountSlot"/>) to a per-CPU counter. Clobbers R0–R5.</summary>
    private static void EmitCount(InstructionBuilder code, CallStatsMaps maps, int counterOffset, short? amountSlot = null)
    {
        var label = $"count{code.SlotCount}";
        code.LoadMapFd(Register.R1, maps.ScratchFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotZeroKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, label);
        if (amountSlot is short slot) code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot);
        else code.Mov64(Register.R1, 1);
        code.AtomicAdd64(Register.R0, (short)counterOffset, Register.R1)
            .Label(label)
            .Mov64(Register.R0, 0);
    }

    private static short Frame(int fieldOffset) => (short)(StackHeaderSize + fieldOffset);
    private static short Record(int recordOffset) => (short)(ScratchRecordOffset + recordOffset);
}
