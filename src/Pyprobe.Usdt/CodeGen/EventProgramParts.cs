using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.CpuQueues;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Maps;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// What every program that sends one record per probe hit shares (the USDT event program and the audit program):
/// the process/thread filter, a per-CPU scratch value of two counters (hits, lost) followed by the record being
/// built, the record header, and sending it with its lost counter. Map names are bound when the maps exist.
/// </summary>
public static class EventProgramParts
{
    /// <summary>Ring buffer the records go to.</summary>
    public const string RingMap = "ring";

    /// <summary>The queue per CPU records go to instead of the ring (<see cref="CpuQueueLayout"/>); the ring then only wakes the reader.</summary>
    public const string QueuesMap = "queues";

    /// <summary>
    /// The scratch values (<see cref="Scratch"/>), one a CPU: hits (u64), lost (u64), the queue output's and the pair memo's
    /// work bytes, then the record.
    /// </summary>
    public const string ScratchMap = "scratch";

    /// <summary>
    /// Bytes of every event program's scratch value: room for the longest record any of them builds (two names of
    /// <see cref="UsdtEventLayout.MaxStringLength"/> bytes and their fields) after <see cref="RecordOffset"/>. One size
    /// for all, so that a program is generated before its session's map exists.
    /// </summary>
    public const int ScratchBytes = 8384;

    /// <summary>Where this machine's event programs find their scratch value.</summary>
    public static CpuScratchLayout Scratch { get; } = CpuScratchLayout.For(ScratchBytes);

    /// <summary>Hash map of allowed tgids (u32 → u8).</summary>
    public const string TargetsMap = "targets";

    public const int HitsCounterOffset = 0;
    public const int LostCounterOffset = 8;

    /// <summary>
    /// Where <see cref="CpuQueueOutput"/>'s work bytes (the CPU number as a key, the header, the wakeup flag) lie: beside
    /// the counters and the record's start, in the cache line every event touches anyway. After the longest record, as
    /// they were, they put every event on a second page of the scratch value (the program took 365 ns an event there,
    /// 350 here, on a guest whose trap leaves every page cold; docs/facts.md).
    /// </summary>
    public const int QueueWorkOffset = 16;

    /// <summary>Where <see cref="StringPairMemo"/>'s work bytes lie (the pair's slot index, a copy of its value): beside them too.</summary>
    public const int PairWorkOffset = QueueWorkOffset + CpuQueueOutput.WorkBytes;

    public const int RecordOffset = PairWorkOffset + StringPairMemo.WorkBytes;

    /// <summary>
    /// A CPU looks at the ring's fill (to wake the reader) on every this many hits (see <see cref="RingOutput.EmitWakeupFlags"/>):
    /// bpf_ringbuf_query on every event cost as much as the output itself, and the reader polls every 10 ms anyway.
    /// </summary>
    public const int WakeupCheckEvery = 64;

    /// <summary>
    /// ctx → <paramref name="ctx"/>, pid_tgid → <paramref name="pidTgid"/>, the filter, then the scratch value →
    /// <paramref name="scratch"/> with its hit counted. Filtered-out hits jump to <paramref name="exit"/>.
    /// </summary>
    /// <param name="countHit">Count the hit (the bench turns it off to measure what the counter costs).</param>
    /// <param name="tgids">Processes to keep, compared as constants instead of looked up in <see cref="TargetsMap"/>, or null.</param>
    public static void EmitStart(InstructionBuilder code, Register ctx, Register pidTgid, Register scratch, bool filterTargets, IReadOnlyList<int>? tids, string exit, bool countHit = true,
        IReadOnlyList<int>? tgids = null)
    {
        code.Mov64(ctx, Register.R1)
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(pidTgid, Register.R0);
        PidFilter.Emit(code, pidTgid, filterTargets ? TargetsMap : null, tids, exit, tgids);
        CpuScratch.EmitFind(code, ScratchMap, Scratch, scratch, exit);
        if (countHit) MapLookup.Increment(code, scratch, HitsCounterOffset);
    }

    /// <summary>Timestamp, tgid, tid and the probe id at the start of the record (<see cref="UsdtEventLayout"/>).</summary>
    /// <param name="probeId">
    /// The probe id when the program serves one probe (stored as a constant), or null to take it from the attach cookie
    /// (a program shared by several probes; the helper call cost 5–30 ns an event).
    /// </param>
    public static void EmitHeader(InstructionBuilder code, Register ctx, Register pidTgid, Register scratch, uint? probeId = null)
    {
        code.Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, scratch, Field(UsdtEventLayout.TimestampOffset), Register.R0)
            .Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.TgidOffset), Register.R1)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.TidOffset), pidTgid);
        if (probeId is uint id)
        {
            code.StoreImm(MemorySize.Word, scratch, Field(UsdtEventLayout.ProbeIdOffset), unchecked((int)id));
            return;
        }
        code.Mov64(Register.R1, ctx)
            .Call(HelperFunction.GetAttachCookie)
            .StoreMem(MemorySize.Word, scratch, Field(UsdtEventLayout.ProbeIdOffset), Register.R0);
    }

    /// <summary>Sends the record (<paramref name="size"/> + <paramref name="sizeConstant"/> bytes); a full ring counts as lost.</summary>
    /// <param name="wakeupCheckEvery">Look at the ring's fill on every this many hits of a CPU (a power of two; 1: every event).</param>
    /// <param name="queues">Send to the queue per CPU of this layout (<see cref="QueuesMap"/>) instead of the ring.</param>
    public static void EmitSend(InstructionBuilder code, Register scratch, Register? size, int sizeConstant, int wakeupThreshold, int wakeupCheckEvery = WakeupCheckEvery, CpuQueueLayout? queues = null)
    {
        if (queues is not null)
        {
            CpuQueueOutput.Emit(code, QueuesMap, RingMap, queues, scratch, RecordOffset, size, sizeConstant, scratch, LostCounterOffset, wakeupThreshold, QueueWorkOffset);
            return;
        }
        RingOutput.Emit(code, RingMap, scratch, RecordOffset, size, sizeConstant, scratch, LostCounterOffset, wakeupThreshold,
            wakeupCheckEvery > 1 ? new WakeupCheckCounter(scratch, HitsCounterOffset, wakeupCheckEvery) : null);
    }

    /// <summary>The scratch value size programs that send to <paramref name="queues"/> need (at least): room for the longest record they take.</summary>
    public static int ScratchValueSize(CpuQueueLayout queues) => RecordOffset + (int)((queues.MaxPayloadBytes + 7) & ~7u);

    /// <summary>The fds for the map names, from a session's maps.</summary>
    public static Dictionary<string, int> Bindings(int ringFd, int scratchFd, int? targetsFd, CpuQueueMap? queues = null)
    {
        var fds = new Dictionary<string, int>(StringComparer.Ordinal) { [RingMap] = ringFd, [ScratchMap] = scratchFd };
        if (queues is not null) fds[QueuesMap] = queues.Fd;
        if (targetsFd is int targets) fds[TargetsMap] = targets;
        return fds;
    }

    /// <summary>Offset of a record field from the scratch value's start.</summary>
    public static short Field(int recordOffset) => (short)(RecordOffset + recordOffset);
}
