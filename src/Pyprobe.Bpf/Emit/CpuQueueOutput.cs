using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.CpuQueues;

namespace Pyprobe.Bpf.Emit;

/// <summary>
/// Sends a record built in a per-CPU scratch value to this CPU's queue (<see cref="CpuQueueLayout"/>): a compare-exchange
/// on the queue's head reserves its bytes, the fixed part is copied by loads and stores, a variable tail (copied strings)
/// with bpf_probe_read_kernel, and the header, written last, makes it visible. A record the queue cannot take (full, or
/// a second writer on this CPU took the head first) increments the lost counter, so loss is counted, never silent. When
/// the record lifts the queue's fill across <c>wakeupThreshold</c>, one 8-byte record to <c>doorbellMap</c> (a ring
/// buffer) wakes the reader, which otherwise looks on its own timer.
/// </summary>
public static class CpuQueueOutput
{
    private const int ForceWakeup = 2;

    /// <summary>Bytes of the sender's map value <see cref="Emit"/> works in.</summary>
    public const int WorkBytes = 24;

    /// <summary>
    /// Sends <c>size + sizeConstant</c> bytes (<paramref name="size"/> null: just the constant; its value at most
    /// <c>layout.MaxPayloadBytes - sizeConstant</c> or the record is counted as lost) from <c>data + dataOffset</c>,
    /// then falls through. <paramref name="data"/> must have room for the constant part rounded up to 8 bytes.
    /// Clobbers R0–R5; <paramref name="data"/>, <paramref name="size"/> and <paramref name="lostCounter"/> must be R6–R9.
    /// </summary>
    /// <param name="workOffset">
    /// <see cref="WorkBytes"/> bytes of <paramref name="data"/>'s map value this may use: the CPU number (a key), the header
    /// and the wakeup flag live there, not on the stack, which some programs have little of left.
    /// </param>
    public static void Emit(InstructionBuilder code, string queuesMap, string doorbellMap, CpuQueueLayout layout, Register data, int dataOffset, Register? size, int sizeConstant,
        Register lostCounter, int lostCounterOffset, int wakeupThreshold, int workOffset)
    {
        if (sizeConstant < 0 || sizeConstant > layout.MaxPayloadBytes) throw new ArgumentOutOfRangeException(nameof(sizeConstant));
        var labels = code.Scope("queue");
        string lost = labels["lost"], done = labels["done"], quiet = labels["quiet"], copied = labels["copied"];
        short key = (short)workOffset, header = (short)(workOffset + 8), wake = (short)(workOffset + 16);
        var variableLimit = (int)layout.MaxPayloadBytes - sizeConstant;
        var threshold = Math.Clamp(wakeupThreshold, 1, (int)layout.Capacity);

        if (size is { } bytes) code.JumpIf(JumpCondition.Greater, bytes, variableLimit, lost);
        code.Call(HelperFunction.GetSmpProcessorId)
            .StoreMem(MemorySize.Word, data, key, Register.R0)
            .LoadMap(Register.R1, queuesMap)
            .Mov64(Register.R2, data).Add64(Register.R2, key)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, lost);
        // R1 = the queue, R3 = payload bytes, R4 = framed bytes, R2 = head, R0 = fill before.
        code.Mov64(Register.R1, Register.R0);
        if (size is { } n) code.Mov64(Register.R3, n).Add64(Register.R3, sizeConstant);
        else code.Mov64(Register.R3, sizeConstant);
        code.Mov64(Register.R4, Register.R3).Add64(Register.R4, CpuQueueLayout.HeaderBytes + 7).And64(Register.R4, -8)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.R1, CpuQueueLayout.HeadOffset)
            .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R1, CpuQueueLayout.TailOffset)
            .Mov64(Register.R0, Register.R2).Sub64(Register.R0, Register.R5)
            .Mov64(Register.R5, Register.R0).Add64(Register.R5, Register.R4)
            .JumpIf(JumpCondition.Greater, Register.R5, (int)layout.Capacity, lost)
            // The reader sleeps until a record lifts the fill across the threshold (or its timer ends).
            .StoreImm(MemorySize.DoubleWord, data, wake, 0)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R0, threshold, quiet)
            .JumpIf(JumpCondition.Less, Register.R5, threshold, quiet)
            .StoreImm(MemorySize.DoubleWord, data, wake, 1)
            .Label(quiet)
            .Mov64(Register.R5, Register.R2).Add64(Register.R5, Register.R4)
            .Mov64(Register.R0, Register.R2)
            .AtomicCompareExchange64(Register.R1, CpuQueueLayout.HeadOffset, Register.R5)
            .JumpIf(JumpCondition.NotEqual, Register.R0, Register.R2, lost)
            .Mov64(Register.R5, Register.R2).Xor64(Register.R5, -1).Lsh64(Register.R5, 32).Or64(Register.R5, Register.R3)
            .StoreMem(MemorySize.DoubleWord, data, header, Register.R5)
            .And64(Register.R2, (int)layout.Capacity - 1)
            .Add64(Register.R1, Register.R2);
        // The fixed part, eight bytes at a time (the last word's spare bytes fall in the record's padding).
        const int payload = CpuQueueLayout.DataOffset + CpuQueueLayout.HeaderBytes;
        for (var at = 0; at < sizeConstant; at += 8)
            code.LoadMem(MemorySize.DoubleWord, Register.R0, data, (short)(dataOffset + at))
                .StoreMem(MemorySize.DoubleWord, Register.R1, (short)(payload + at), Register.R0);
        if (size is { } tail)
        {
            // The record's address is found again after the copy (a lookup the JIT inlines, and the position from the
            // header), not kept on the stack: some programs have none of it left. The lookup found this CPU's queue
            // a moment ago and cannot fail now; the record is reserved and must be committed whatever happens.
            code.JumpIf(JumpCondition.Equal, tail, 0, copied)
                .Add64(Register.R1, payload + sizeConstant)
                .Mov64(Register.R2, tail)
                .Mov64(Register.R3, data).Add64(Register.R3, dataOffset + sizeConstant)
                .Call(HelperFunction.ProbeReadKernel)
                .LoadMap(Register.R1, queuesMap)
                .Mov64(Register.R2, data).Add64(Register.R2, key)
                .Call(HelperFunction.MapLookupElem)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, done)
                .LoadMem(MemorySize.DoubleWord, Register.R1, data, header)
                .Rsh64(Register.R1, 32)
                .Xor64(Register.R1, -1)
                .And64(Register.R1, (int)layout.Capacity - 1)
                .Add64(Register.R1, Register.R0)
                .Label(copied);
        }
        // x86-64 keeps stores in order: the header, stored last, is seen only after the payload.
        code.LoadMem(MemorySize.DoubleWord, Register.R5, data, header)
            .StoreMem(MemorySize.DoubleWord, Register.R1, CpuQueueLayout.DataOffset, Register.R5)
            .LoadMem(MemorySize.DoubleWord, Register.R1, data, wake)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, done)
            .LoadMap(Register.R1, doorbellMap)
            .Mov64(Register.R2, data).Add64(Register.R2, header)
            .Mov64(Register.R3, 8)
            .Mov64(Register.R4, ForceWakeup)
            .Call(HelperFunction.RingbufOutput)
            .Jump(done)
            .Label(lost);
        MapLookup.Increment(code, lostCounter, lostCounterOffset);
        code.Label(done);
    }
}
