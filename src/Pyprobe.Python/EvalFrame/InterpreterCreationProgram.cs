namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// The program of <see cref="InterpreterCreationWatch"/>, run where an interpreter constructor returns: the process
/// that made an interpreter stops (<c>bpf_send_signal(SIGSTOP)</c>, in its own context, so the new interpreter runs no
/// Python code before user space has looked at it) and its pid goes to the ring.
/// </summary>
internal static class InterpreterCreationProgram
{
    public const string Ring = "pp_interp_new";
    public const int RecordSize = 4;
    private const int SigStop = 19;

    /// <param name="pid">The watched process: a perf-event uprobe may run the program in other processes too (it filters by mm only as an optimisation), and stopping one of those would harm it.</param>
    public static AssembledProgram Generate(int pid)
    {
        var code = new InstructionBuilder();
        code.Call(HelperFunction.GetCurrentPidTgid)
            .Rsh64(Register.R0, 32)
            .JumpIf(JumpCondition.NotEqual, Register.R0, pid, "out")
            .StoreMem(MemorySize.Word, Register.FramePointer, -4, Register.R0)
            .Mov64(Register.R1, SigStop)
            .Call(HelperFunction.SendSignal)
            // Flags 0: the reader is woken at once; the process waits stopped until it is handled.
            .LoadMap(Register.R1, Ring).Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, -4)
            .Mov64(Register.R3, RecordSize)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.RingbufOutput)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }
}
