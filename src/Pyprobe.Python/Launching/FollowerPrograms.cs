namespace Pyprobe.Python.Launching;

/// <summary>What stopped a followed process (the second word of a follower record).</summary>
public enum FollowerStop : uint
{
    /// <summary>The process ran execve: its new program is mapped, nothing of it has run yet.</summary>
    Exec = 0,
    /// <summary>It reached a uprobe pyprobe armed for it (the loader's _dl_debug_state, or the interpreter's first activation).</summary>
    Uprobe = 1,
    /// <summary>A forked child of a followed process (no exec) reached PyOS_AfterFork_Child: a running Python, copied.</summary>
    AfterFork = 2,
}

/// <summary>
/// The three small programs of <see cref="ProcessFollower"/>. A followed process is stopped with
/// <c>bpf_send_signal(SIGSTOP)</c> in its own context, so it stops before it runs one more instruction of user
/// code past the point that fired, and a record (pid, <see cref="FollowerStop"/>) tells user space to look at it.
/// </summary>
internal static class FollowerPrograms
{
    public const string Followed = "pp_follow", Armed = "pp_stop", Forked = "pp_forked", Ring = "pp_stops";
    public const int RecordSize = 8;
    private const int SigStop = 19;

    /// <summary>
    /// Raw tracepoint <c>sched_process_fork(parent, child)</c>: a child of a followed process is followed too (its
    /// tgid: a new thread's is its parent's, already there), and listed in <see cref="Forked"/> until it execs, so that
    /// a copy of a running Python stops where CPython's fork returns in the child (<see cref="AfterForkStopper"/>).
    /// </summary>
    public static AssembledProgram Fork(int taskTgidOffset)
    {
        var code = new InstructionBuilder();
        code.Mov64(Register.R6, Register.R1);
        EmitCurrentTgid(code, -4);
        code.LoadMap(Register.R1, Followed).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -4)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.R6, 8)
            .Add64(Register.R3, taskTgidOffset)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, -8)
            .Mov64(Register.R2, 4)
            .Call(HelperFunction.ProbeReadKernel)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "out")
            .StoreImm(MemorySize.Word, Register.FramePointer, -12, 1)
            .LoadMap(Register.R1, Followed).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -8)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, -12)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .LoadMap(Register.R1, Forked).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -8)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, -12)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>A uprobe on PyOS_AfterFork_Child: a forked child listed in <see cref="Forked"/> stops, once.</summary>
    public static AssembledProgram AfterForkStopper() => StopIfIn(Forked, FollowerStop.AfterFork, once: true);

    /// <summary>Raw tracepoint <c>sched_process_exec</c>: a followed process that runs a new program stops.</summary>
    public static AssembledProgram Exec() => StopIfIn(Followed, FollowerStop.Exec, once: false);

    /// <summary>A uprobe: a process armed in <see cref="Armed"/> stops, once (disarmed as it stops).</summary>
    public static AssembledProgram Stopper() => StopIfIn(Armed, FollowerStop.Uprobe, once: true);

    private static AssembledProgram StopIfIn(string map, FollowerStop kind, bool once)
    {
        var code = new InstructionBuilder();
        EmitCurrentTgid(code, -8);
        code.LoadMap(Register.R1, map).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -8)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out");
        if (once)
            code.LoadMap(Register.R1, map).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -8)
                .Call(HelperFunction.MapDeleteElem);
        code.Mov64(Register.R1, SigStop)
            .Call(HelperFunction.SendSignal)
            .StoreImm(MemorySize.Word, Register.FramePointer, -4, (int)kind)
            // Flags 0: the kernel wakes the reader, which waits on nothing else while a process is stopped.
            .LoadMap(Register.R1, Ring).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -8)
            .Mov64(Register.R3, RecordSize)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.RingbufOutput)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    private static void EmitCurrentTgid(InstructionBuilder code, short slot) =>
        code.Call(HelperFunction.GetCurrentPidTgid)
            .Rsh64(Register.R0, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, slot, Register.R0);
}
