namespace Pyprobe.Python.Sampling;

/// <summary>Where the pid and tgid of a <c>task_struct</c> are on this kernel (from its BTF).</summary>
public readonly record struct TaskIdOffsets(int Pid, int Tgid);

/// <summary>
/// Generates the raw-tracepoint program on <c>sched_switch</c> that makes wall-clock (<c>--idle</c>) profiles:
/// a thread of a sampled process that leaves its CPU (to sleep, wait for I/O or a lock, or because it was
/// preempted) has its Python stack walked there and then, in its own context, and sent flagged
/// <see cref="StackSampleFlags.OffCpu"/> with the time; a thread of a sampled process that comes back on a CPU
/// sends a header-only record flagged <see cref="StackSampleFlags.OnCpu"/>. User space pairs them into
/// off-CPU spans. A BPF program can only read the current task's user memory, so the walk has to happen at
/// the switch-out: that is the only moment the sleeping thread is the current one.
/// </summary>
/// <remarks>
/// Cost for every other context switch on the machine: one scratch lookup, two 4-byte kernel reads of the
/// incoming task's ids and two hash lookups (incoming and outgoing process). An exiting thread's last switch
/// (prev_state has TASK_DEAD) is not walked: it will not come back.
/// </remarks>
public static class SchedSwitchProgram
{
    /// <summary>The tracepoint it attaches to: <c>TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)</c>.</summary>
    public const string Tracepoint = "sched_switch";
    private const short NextArgument = 2 * 8, PrevStateArgument = 3 * 8;
    private const int TaskDead = 0x80;

    /// <summary>Per-CPU counter (in the scratch value) of switch-in records sent.</summary>
    public const int SwitchInCounterOffset = StackWalkFragment.OtherCounterOffset;

    /// <param name="maxDepth">Python frames kept per switch-out; a deeper stack keeps its innermost frames and is flagged truncated.</param>
    /// <param name="task">Offsets of <c>task_struct.pid</c> and <c>.tgid</c>, to recognise the incoming thread.</param>
    /// <param name="nativeStackBytes">With <c>--native</c>: the thread's registers and this much of its stack go ahead of each switch-out's walk; 0 for none.</param>
    /// <param name="kernelStack">With <c>--kernel</c>: the kernel's frames (the wait the thread switched out in) go in the native record too.</param>
    public static AssembledProgram Build(int maxDepth, int wakeupThreshold, TaskIdOffsets task, int nativeStackBytes = 0, bool kernelStack = false)
    {
        var scratch = Register.R8;
        var code = new InstructionBuilder();
        var slots = StackWalkFragment.Slots.Allocate(code);

        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.Context, Register.R1);
        StackWalkFragment.EmitScratchLookup(code, slots, "out");
        code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, StackWalkFragment.ContinuingSlot)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, "outgoing");

        // The incoming thread: a sampled one closes its off-CPU span.
        EmitReadNextId(code, slots, slots.ConfigKey, task.Tgid);
        EmitReadNextId(code, slots, slots.TidKey, task.Pid);
        code.LoadMap(Register.R1, StackSampleMaps.Processes)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, slots.ConfigKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "outgoing_state")
            .Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, scratch, StackWalkFragment.Record(StackSampleRecord.TimeOffset), Register.R0)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, slots.ConfigKey)
            .StoreMem(MemorySize.Word, scratch, StackWalkFragment.Record(StackSampleRecord.PidOffset), Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, slots.TidKey)
            .StoreMem(MemorySize.Word, scratch, StackWalkFragment.Record(StackSampleRecord.TidOffset), Register.R1)
            .StoreImm(MemorySize.DoubleWord, scratch, StackWalkFragment.Record(StackSampleRecord.ThreadStateOffset), 0)
            .StoreImm(MemorySize.Word, scratch, StackWalkFragment.Record(StackSampleRecord.FrameCountOffset), 0)
            .StoreImm(MemorySize.Word, scratch, StackWalkFragment.Record(StackSampleRecord.FlagsOffset), (int)StackSampleFlags.OnCpu);
        MapLookup.Increment(code, scratch, SwitchInCounterOffset);
        RingOutput.Emit(code, StackSampleMaps.Ring, scratch, StackWalkFragment.RecordOffset, null, StackSampleRecord.HeaderSize,
            scratch, StackWalkFragment.LostCounterOffset, wakeupThreshold);

        // The outgoing thread (the current one): a sampled one that is not exiting has its stack walked.
        code.Label("outgoing_state")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slots.Context)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R1, PrevStateArgument)
            .And64(Register.R1, TaskDead)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, "out")
            .Label("outgoing");
        StackWalkFragment.EmitSampleIfConfigured(code, slots, maxDepth, wakeupThreshold, StackSampleFlags.OffCpu, nativeStackBytes, kernelStack);
        return code.Assemble();
    }

    /// <summary>Reads the 4-byte id at <c>next + offset</c> into a stack slot (0 when the read fails).</summary>
    private static void EmitReadNextId(InstructionBuilder code, StackWalkFragment.Slots slots, short slot, int offset)
    {
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, slots.Context)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.R3, NextArgument)
            .Add64(Register.R3, offset)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, slot)
            .Mov64(Register.R2, 4)
            .Call(HelperFunction.ProbeReadKernel);
    }
}
