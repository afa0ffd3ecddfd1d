using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Emit;

/// <summary>
/// A per-CPU count of the program's runs (a u64 at <see cref="Offset"/> of the value in <see cref="Value"/>, already
/// incremented for this run): the ring's fill is looked at only when it is a multiple of <see cref="Every"/> (a power of two).
/// </summary>
public sealed record WakeupCheckCounter(Register Value, short Offset, int Every);

/// <summary>
/// Sends a record with <c>bpf_ringbuf_output</c>; a record the ring cannot take increments a per-CPU lost counter,
/// so loss is counted, never silent. Wakeups follow <see cref="EmitWakeupFlags"/>.
/// </summary>
public static class RingOutput
{
    private const int NoWakeup = 1, ForceWakeup = 2, AvailableData = 0;

    /// <summary>
    /// Sends <c>size + sizeConstant</c> bytes (<paramref name="size"/> null: just the constant) from
    /// <c>data + dataOffset</c>, then falls through. Clobbers R0–R5.
    /// </summary>
    /// <param name="lostCounter">Register holding the per-CPU value with the lost counter at <paramref name="lostCounterOffset"/>.</param>
    /// <param name="wakeupThreshold">See <see cref="EmitWakeupFlags"/>.</param>
    public static void Emit(InstructionBuilder code, string ringMap, Register data, int dataOffset, Register? size, int sizeConstant,
        Register lostCounter, int lostCounterOffset, int wakeupThreshold = 0, WakeupCheckCounter? checkEvery = null)
    {
        var sent = code.Scope("ring")["sent"];
        EmitWakeupFlags(code, ringMap, wakeupThreshold, checkEvery);
        code.LoadMap(Register.R1, ringMap).Mov64(Register.R2, data);
        if (dataOffset != 0) code.Add64(Register.R2, dataOffset);
        if (size is { } bytes)
        {
            code.Mov64(Register.R3, bytes);
            if (sizeConstant != 0) code.Add64(Register.R3, sizeConstant);
        }
        else
        {
            code.Mov64(Register.R3, sizeConstant);
        }
        code.Call(HelperFunction.RingbufOutput)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, sent);
        MapLookup.Increment(code, lostCounter, lostCounterOffset);
        code.Label(sent);
    }

    /// <summary>
    /// Leaves the output flags in R4 (clobbers R0–R3). Records are committed without waking the reader (it polls on
    /// a short timer) until the ring holds <paramref name="threshold"/> bytes: one wakeup per event costs the traced
    /// program more than the event itself. A threshold ≤ 0 means the kernel's default wakeups. With
    /// <paramref name="checkEvery"/>, the fill is looked at (bpf_ringbuf_query, 15–30 ns) only on every Nth run of a CPU:
    /// a wakeup comes at most N records per CPU late, a few KB against a threshold of a fraction of the ring.
    /// </summary>
    public static void EmitWakeupFlags(InstructionBuilder code, string ringMap, int threshold, WakeupCheckCounter? checkEvery = null)
    {
        if (threshold <= 0)
        {
            code.Mov64(Register.R4, 0);
            return;
        }
        var labels = code.Scope("wakeup");
        string wake = labels["wake"], quiet = labels["quiet"];
        if (checkEvery is { } counter)
        {
            if (counter.Every <= 0 || (counter.Every & (counter.Every - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(checkEvery), "the check interval must be a power of two");
            code.LoadMem(MemorySize.DoubleWord, Register.R1, counter.Value, counter.Offset)
                .And64(Register.R1, counter.Every - 1)
                .JumpIf(JumpCondition.NotEqual, Register.R1, 0, quiet);
        }
        code.LoadMap(Register.R1, ringMap)
            .Mov64(Register.R2, AvailableData)
            .Call(HelperFunction.RingbufQuery)
            .Mov64(Register.R4, ForceWakeup)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R0, threshold, wake)
            .Label(quiet)
            .Mov64(Register.R4, NoWakeup)
            .Label(wake);
    }
}
