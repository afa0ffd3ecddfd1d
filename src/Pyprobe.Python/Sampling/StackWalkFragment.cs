namespace Pyprobe.Python.Sampling;

/// <summary>
/// The Python stack walk both sampling programs share: in the context of the thread being looked at (the one a
/// CPU-clock sample interrupted, or the one leaving its CPU at a context switch) it finds the thread's
/// <c>PyThreadState</c> (cached per tid, checked against the thread's id on every use, found by walking the
/// interpreters' thread lists on a miss, so a thread that released the GIL is found too), follows the frame
/// chain from the innermost frame outwards, and sends (code object, position, first line) per frame.
/// </summary>
/// <remarks>
/// Every offset comes from the per-process <see cref="StackWalkConfig"/>, so one program serves every CPython
/// version. A frame is read in one <c>bpf_probe_read_user</c> into the per-CPU scratch value and its fields
/// picked out at offsets masked to the read size, which the verifier accepts. Deep stacks are walked in
/// several runs of the program: it tail-calls itself through its own program array (each program type needs
/// its own, and its own scratch value, since the walk's position is kept there across the tail call).
/// </remarks>
internal static class StackWalkFragment
{
    public const int SamplesCounterOffset = 0;
    public const int LostCounterOffset = 8;
    private const int ReadSlot = 16;       // u64 a helper reads into
    private const int ExpectedSlot = 24;   // u64 the thread-state field must equal: the tid or the fsbase
    private const int FrameBuffer = 32;
    private const int CurrentFrameSlot = FrameBuffer + StackWalkConfig.MaxFrameReadSize; // where the walk is, kept across tail calls
    public const int ContinuingSlot = CurrentFrameSlot + 8; // 1 while a tail call carries on this CPU's walk
    /// <summary>A second per-CPU counter a program may use for records that are not walks (switch-ins).</summary>
    public const int OtherCounterOffset = ContinuingSlot + 8;
    public const int RecordOffset = OtherCounterOffset + 8;
    private const int FieldMask = StackWalkConfig.MaxFrameReadSize - 1;

    /// <summary>Frames one run of the program steps through before it tail-calls itself to go on.</summary>
    public const int StepsPerCall = 64;

    /// <summary>Interpreters walked per process when looking for a thread state (the main one and subinterpreters).</summary>
    public const int MaxInterpreters = 4;
    /// <summary>Thread states walked per interpreter on a cache miss.</summary>
    public const int MaxThreadsPerInterpreter = 256;

    /// <summary>Deepest walk offered: the per-CPU scratch value (≤ 32 KiB) holds the record, and 33 tail calls × <see cref="StepsPerCall"/> steps reach it.</summary>
    public const int MaxDepthLimit = 1024;

    public static int ScratchValueSize(int maxDepth) => RecordOffset + StackSampleRecord.HeaderSize + maxDepth * StackSampleRecord.FrameSize;

    /// <summary>The program's stack slots, allocated once per program.</summary>
    public sealed record Slots(short TidKey, short ConfigKey, short Counter, short CacheValue, short Context)
    {
        public static Slots Allocate(InstructionBuilder code) => new(
            code.Stack.Allocate(4, "tid key"), code.Stack.Allocate(4, "pid key"), code.Stack.Allocate(8, "loop counter"),
            code.Stack.Allocate(8, "thread state"), code.Stack.Allocate(8, "program context"));
    }

    /// <summary>R8 = this CPU's scratch value (key 0 of <see cref="StackSampleMaps.Scratch"/>), or a jump to <paramref name="onMissing"/>.</summary>
    public static void EmitScratchLookup(InstructionBuilder code, Slots slots, string onMissing)
    {
        code.StoreImm(MemorySize.Word, Register.FramePointer, slots.TidKey, 0)
            .LoadMap(Register.R1, StackSampleMaps.Scratch)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, slots.TidKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, onMissing)
            .Mov64(Register.R8, Register.R0);
    }

    /// <summary>
    /// The end of every stack-sampling program: R9 = the current process's walk config (R7 = pid/tgid, R8 = the
    /// scratch value), or — for a process that is not sampled — a cleared continuation flag (a process removed
    /// while a tail call carried its walk leaves no stale walk behind); then the walk and the exit.
    /// </summary>
    public static void EmitSampleIfConfigured(InstructionBuilder code, Slots slots, int maxDepth, int wakeupThreshold, StackSampleFlags recordFlags)
    {
        var (pidTgid, scratch, config) = (Register.R7, Register.R8, Register.R9);
        var labels = code.Scope("sample");
        code.Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(pidTgid, Register.R0)
            .Rsh64(Register.R0, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, slots.ConfigKey, Register.R0)
            .LoadMap(Register.R1, StackSampleMaps.Processes)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, slots.ConfigKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, labels["not_sampled"])
            .Mov64(config, Register.R0);
        EmitWalk(code, slots, maxDepth, wakeupThreshold, recordFlags);
        code.Jump("out")
            .Label(labels["not_sampled"])
            .StoreImm(MemorySize.DoubleWord, scratch, ContinuingSlot, 0)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
    }

    /// <summary>
    /// The walk of the current thread and the record it sends. Expects R7 = bpf_get_current_pid_tgid(), R8 = the
    /// scratch value, R9 = the process's <see cref="StackWalkConfig"/> and the program context in
    /// <see cref="Slots.Context"/>; falls through once the record is sent (or lost). A run that follows a tail
    /// call resumes the walk where the previous run left it.
    /// </summary>
    /// <param name="recordFlags">Flags every record of this program carries (e.g. <see cref="StackSampleFlags.OffCpu"/>).</param>
    public static void EmitWalk(InstructionBuilder code, Slots slots, int maxDepth, int wakeupThreshold, StackSampleFlags recordFlags)
    {
        if (maxDepth is < 1 or > MaxDepthLimit) throw new ArgumentOutOfRangeException(nameof(maxDepth), $"between 1 and {MaxDepthLimit} frames");
        var frame = Register.R6;
        var pidTgid = Register.R7;
        var scratch = Register.R8;
        var config = Register.R9;
        code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ContinuingSlot)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, "new_sample")
            .StoreImm(MemorySize.DoubleWord, scratch, ContinuingSlot, 0)
            .LoadMem(MemorySize.DoubleWord, frame, scratch, CurrentFrameSlot)
            .Jump("walk_frames")
            .Label("new_sample")
            .Mov64(Register.R1, 1)
            .AtomicAdd64(scratch, SamplesCounterOffset, Register.R1);

        code.Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.TimeOffset), Register.R0)
            .Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.PidOffset), Register.R1)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.TidOffset), pidTgid)
            .StoreImm(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), 0)
            .StoreImm(MemorySize.Word, scratch, Record(StackSampleRecord.FrameCountOffset), 0)
            .StoreImm(MemorySize.Word, scratch, Record(StackSampleRecord.FlagsOffset), (int)recordFlags);

        EmitExpectedThreadId(code, scratch, config, pidTgid);
        EmitFindThreadState(code, slots, frame, pidTgid, scratch, config);

        // The innermost frame: tstate->frame, tstate->cframe->current_frame or tstate->current_frame.
        code.Label("have_tstate")
            .StoreMem(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), frame);
        EmitReadField(code, scratch, frame, config, StackWalkConfig.ThreadTopFrameOffset, "send");
        code.LoadMem(MemorySize.DoubleWord, frame, scratch, ReadSlot)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.CFrameCurrentFrameOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), "walk_frames")
            .JumpIf(JumpCondition.Equal, frame, 0, "send");
        EmitReadField(code, scratch, frame, config, StackWalkConfig.CFrameCurrentFrameOffset, "send");
        code.LoadMem(MemorySize.DoubleWord, frame, scratch, ReadSlot);

        EmitFrameWalk(code, slots, maxDepth);

        code.Label("send")
            .LoadMem(MemorySize.Word, Register.R6, scratch, Record(StackSampleRecord.FrameCountOffset))
            .JumpIf(JumpCondition.LessOrEqual, Register.R6, maxDepth, "size_ok")
            .Mov64(Register.R6, maxDepth)
            .Label("size_ok")
            .Lsh64(Register.R6, 4);
        RingOutput.Emit(code, StackSampleMaps.Ring, scratch, RecordOffset, Register.R6, StackSampleRecord.HeaderSize, scratch, LostCounterOffset, wakeupThreshold);
    }

    /// <summary>
    /// The value the thread state's id field holds for this thread: its tid (3.11+; in a pid namespace of its own,
    /// the tid it has there), or its fsbase (= pthread_self()).
    /// </summary>
    private static void EmitExpectedThreadId(InstructionBuilder code, Register scratch, Register config, Register pidTgid)
    {
        code.Mov32(Register.R1, pidTgid)
            .StoreMem(MemorySize.DoubleWord, scratch, ExpectedSlot, Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.MatchByFsBaseOffset)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, "expected_fsbase")
            .LoadMem(MemorySize.DoubleWord, Register.R2, config, StackWalkConfig.PidNamespaceInodeOffset)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, "expected_ok")
            // struct bpf_pidns_info { u32 pid; u32 tgid; } over the slot; its pid is the thread's id in the namespace.
            .LoadMem(MemorySize.DoubleWord, Register.R1, config, StackWalkConfig.PidNamespaceDeviceOffset)
            .Mov64(Register.R3, scratch).Add64(Register.R3, ExpectedSlot)
            .Mov64(Register.R4, 8)
            .Call(HelperFunction.GetNsCurrentPidTgid)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "no_tstate")
            .LoadMem(MemorySize.Word, Register.R1, scratch, ExpectedSlot)
            .StoreMem(MemorySize.DoubleWord, scratch, ExpectedSlot, Register.R1)
            .Jump("expected_ok")
            .Label("expected_fsbase")
            .Call(HelperFunction.GetCurrentTask)
            .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.TaskFsBaseOffset)
            .Add64(Register.R3, Register.R0)
            .Mov64(Register.R1, scratch).Add64(Register.R1, ExpectedSlot)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadKernel)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "no_tstate")
            .Label("expected_ok");
    }

    /// <summary>Bytes of the thread search's context on the program's stack: the scratch value, the config, the thread state, found or not.</summary>
    private const int ThreadSearchContextSize = 32;

    /// <summary>
    /// One interpreter's thread list as bpf_loop rounds (5.17+), from the thread state in <paramref name="found"/>: a
    /// round per thread state, checked once by the verifier (the unrolled search was most of the sampling program's
    /// processed instructions). Jumps to <c>remember_tstate</c> with the thread's state in <paramref name="found"/>, or
    /// to <paramref name="notHere"/>.
    /// </summary>
    private static void EmitThreadSearchWithLoop(InstructionBuilder code, short context, Register found, Register scratch, Register config, string notHere)
    {
        const string callback = "thread_step";
        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, context, scratch)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 8), config)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 16), found)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 24), 0)
            .Mov64(Register.R1, MaxThreadsPerInterpreter);
        LoopCall.Emit(code, callback, context)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(context + 24))
            .JumpIf(JumpCondition.Equal, Register.R1, 0, notHere)
            .LoadMem(MemorySize.DoubleWord, found, Register.FramePointer, (short)(context + 16))
            .Jump("remember_tstate");
        code.Subprogram(callback, step =>
        {
            // R1 = the round, R2 = the context; R0 = 1 ends the loop. R6 keeps the context, R7 the thread state.
            var labels = step.Scope("thread_step");
            string stop = labels["stop"];
            var (contextRegister, state) = (Register.R6, Register.R7);
            step.Mov64(contextRegister, Register.R2)
                .LoadMem(MemorySize.DoubleWord, scratch, contextRegister, 0)
                .LoadMem(MemorySize.DoubleWord, config, contextRegister, 8)
                .LoadMem(MemorySize.DoubleWord, state, contextRegister, 16)
                .JumpIf(JumpCondition.Equal, state, 0, stop);
            EmitReadField(step, scratch, state, config, StackWalkConfig.ThreadMatchOffset, stop);
            step.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
                .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, ExpectedSlot)
                .JumpIf(JumpCondition.Equal, Register.R1, Register.R2, labels["match"]);
            EmitReadField(step, scratch, state, config, StackWalkConfig.ThreadNextOffset, stop);
            step.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
                .StoreMem(MemorySize.DoubleWord, contextRegister, 16, Register.R1)
                .Mov64(Register.R0, 0)
                .Exit()
                .Label(labels["match"])
                .StoreImm(MemorySize.DoubleWord, contextRegister, 24, 1)
                .Label(stop)
                .Mov64(Register.R0, 1)
                .Exit();
        });
    }

    /// <summary>Leaves the thread's PyThreadState in <paramref name="found"/> and jumps to <c>have_tstate</c>, or flags the sample.</summary>
    private static void EmitFindThreadState(InstructionBuilder code, Slots slots, Register found, Register pidTgid, Register scratch, Register config)
    {
        code.StoreMem(MemorySize.Word, Register.FramePointer, slots.TidKey, pidTgid)
            .LoadMap(Register.R1, StackSampleMaps.ThreadStates)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, slots.TidKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "walk_threads")
            .LoadMem(MemorySize.DoubleWord, found, Register.R0, 0);
        EmitReadField(code, scratch, found, config, StackWalkConfig.ThreadMatchOffset, "walk_threads");
        code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
            .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, ExpectedSlot)
            .JumpIf(JumpCondition.Equal, Register.R1, Register.R2, "have_tstate");

        // A miss, or a cached thread state that now belongs to another thread: walk the lists.
        code.Label("walk_threads")
            .LoadMem(MemorySize.DoubleWord, found, config, StackWalkConfig.RuntimeAddressOffset);
        EmitReadField(code, scratch, found, config, StackWalkConfig.InterpretersHeadOffset, "no_tstate");
        short? searchContext = null;
        for (var i = 0; i < MaxInterpreters; i++)
        {
            string threads = $"threads{i}", nextInterpreter = $"interp_next{i}";
            code.LoadMem(MemorySize.DoubleWord, found, scratch, ReadSlot)
                .JumpIf(JumpCondition.Equal, found, 0, "no_tstate")
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.CacheValue, found);
            EmitReadField(code, scratch, found, config, StackWalkConfig.InterpreterThreadsHeadOffset, nextInterpreter);
            code.LoadMem(MemorySize.DoubleWord, found, scratch, ReadSlot);
            if (Bpf.Features.KernelFeatures.HasBpfLoop)
            {
                searchContext ??= code.Stack.Allocate(ThreadSearchContextSize, "thread search context");
                EmitThreadSearchWithLoop(code, searchContext.Value, found, scratch, config, nextInterpreter);
                code.Label(nextInterpreter)
                    .LoadMem(MemorySize.DoubleWord, found, Register.FramePointer, slots.CacheValue);
                EmitReadField(code, scratch, found, config, StackWalkConfig.InterpreterNextOffset, "no_tstate");
                continue;
            }
            code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, slots.Counter, 0)
                .Label(threads)
                .JumpIf(JumpCondition.Equal, found, 0, nextInterpreter)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slots.Counter)
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, MaxThreadsPerInterpreter, nextInterpreter)
                .Add64(Register.R1, 1)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.Counter, Register.R1);
            EmitReadField(code, scratch, found, config, StackWalkConfig.ThreadMatchOffset, nextInterpreter);
            code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
                .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, ExpectedSlot)
                .JumpIf(JumpCondition.Equal, Register.R1, Register.R2, "remember_tstate");
            EmitReadField(code, scratch, found, config, StackWalkConfig.ThreadNextOffset, nextInterpreter);
            code.LoadMem(MemorySize.DoubleWord, found, scratch, ReadSlot)
                .Jump(threads)
                .Label(nextInterpreter)
                .LoadMem(MemorySize.DoubleWord, found, Register.FramePointer, slots.CacheValue);
            EmitReadField(code, scratch, found, config, StackWalkConfig.InterpreterNextOffset, "no_tstate");
        }
        code.Label("no_tstate")
            .LoadMem(MemorySize.Word, Register.R1, scratch, Record(StackSampleRecord.FlagsOffset))
            .Or64(Register.R1, (int)StackSampleFlags.NoThreadState)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.FlagsOffset), Register.R1)
            .Jump("send");

        code.Label("remember_tstate")
            .StoreMem(MemorySize.Word, Register.FramePointer, slots.TidKey, pidTgid)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.CacheValue, found)
            .LoadMap(Register.R1, StackSampleMaps.ThreadStates)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, slots.TidKey)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, slots.CacheValue)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .LoadMem(MemorySize.DoubleWord, found, Register.FramePointer, slots.CacheValue)
            .Jump("have_tstate");
    }

    /// <summary>Steps a walk takes at most: as many as 34 runs of the tail-call form reach.</summary>
    private const int MaxSteps = 34 * StepsPerCall;

    /// <summary>Bytes of the loop form's context on the program's stack: the scratch value, the config, the outcome.</summary>
    private const int LoopContextSize = 24;

    /// <summary>How the loop form's callback ended the walk early (in the context's outcome).</summary>
    private const int OutcomeTruncated = 1, OutcomeReadError = 2;

    /// <summary>
    /// From the innermost frame (R6) outwards, one step per frame: with bpf_loop the step is a callback the verifier
    /// checks once (<see cref="EmitFrameWalkWithLoop"/>); without it, <see cref="StepsPerCall"/> steps per run of the
    /// program, which tail-calls itself to go on (<see cref="EmitFrameWalkWithTailCalls"/>). The walk ends when the chain
    /// ends, a frame cannot be read, or the record is full; frames left over mean the stack was deeper than the program walks.
    /// </summary>
    private static void EmitFrameWalk(InstructionBuilder code, Slots slots, int maxDepth)
    {
        if (Bpf.Features.KernelFeatures.HasBpfLoop) EmitFrameWalkWithLoop(code, maxDepth);
        else EmitFrameWalkWithTailCalls(code, slots, maxDepth);
        code.Label("truncated")
            .Mov64(Register.R2, (int)StackSampleFlags.Truncated)
            .Jump("flag")
            .Label("read_error")
            .Mov64(Register.R2, (int)StackSampleFlags.ReadError)
            .Label("flag")
            .LoadMem(MemorySize.Word, Register.R1, Register.R8, Record(StackSampleRecord.FlagsOffset))
            .Or64(Register.R1, Register.R2)
            .StoreMem(MemorySize.Word, Register.R8, Record(StackSampleRecord.FlagsOffset), Register.R1)
            .Jump("send");
    }

    /// <summary>
    /// The walk as bpf_loop rounds (5.17+): each runs <see cref="EmitStep"/> on the frame the scratch value says the
    /// walk is at; one verified step instead of <see cref="StepsPerCall"/> (the sampling program processed 41,607
    /// instructions, ~100 ms of `record`'s attach, with the loop unrolled by the verifier).
    /// </summary>
    private static void EmitFrameWalkWithLoop(InstructionBuilder code, int maxDepth)
    {
        var (frame, scratch, config) = (Register.R6, Register.R8, Register.R9);
        var context = code.Stack.Allocate(LoopContextSize, "walk context");
        var callback = $"walk_step_{maxDepth}";
        code.Label("walk_frames")
            .StoreMem(MemorySize.DoubleWord, scratch, CurrentFrameSlot, frame)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, context, scratch)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 8), config)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 16), 0)
            .Mov64(Register.R1, MaxSteps);
        LoopCall.Emit(code, callback, context)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(context + 16))
            .JumpIf(JumpCondition.Equal, Register.R1, OutcomeTruncated, "truncated")
            .JumpIf(JumpCondition.Equal, Register.R1, OutcomeReadError, "read_error")
            // Every step taken with frames left: deeper than the walk goes.
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, CurrentFrameSlot)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, "truncated")
            .Jump("send");
        code.Subprogram(callback, step =>
        {
            // R1 = the round, R2 = the context; R0 = 1 ends the loop. The callback's own stack keeps the context.
            const short contextSpill = -8;
            var labels = step.Scope("walk_step");
            string next = labels["next"], end = labels["end"], readError = labels["read_error"], truncated = labels["truncated"];
            step.StoreMem(MemorySize.DoubleWord, Register.FramePointer, contextSpill, Register.R2)
                .LoadMem(MemorySize.DoubleWord, scratch, Register.R2, 0)
                .LoadMem(MemorySize.DoubleWord, config, Register.R2, 8)
                .LoadMem(MemorySize.DoubleWord, frame, scratch, CurrentFrameSlot)
                .JumpIf(JumpCondition.Equal, frame, 0, end);
            EmitStep(step, maxDepth, readError, next, truncated);
            step.Label(next)
                .Mov64(Register.R0, 0)
                .Exit()
                .Label(end)
                .Mov64(Register.R0, 1)
                .Exit()
                .Label(truncated)
                .Mov64(Register.R1, OutcomeTruncated)
                .Jump(labels["outcome"])
                .Label(readError)
                .Mov64(Register.R1, OutcomeReadError)
                .Label(labels["outcome"])
                .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, contextSpill)
                .StoreMem(MemorySize.DoubleWord, Register.R2, 16, Register.R1)
                .Mov64(Register.R0, 1)
                .Exit();
        });
    }

    /// <summary>
    /// The walk in runs of <see cref="StepsPerCall"/> steps (kernels without bpf_loop): with frames left, the program
    /// saves where it is and tail-calls itself (the kernel allows 33 tail calls), so the verifier checks a short loop
    /// while the walk goes deep.
    /// </summary>
    private static void EmitFrameWalkWithTailCalls(InstructionBuilder code, Slots slots, int maxDepth)
    {
        var frame = Register.R6;
        var scratch = Register.R8;
        code.Label("walk_frames")
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, slots.Counter, 0)
            .Label("step")
            .JumpIf(JumpCondition.Equal, frame, 0, "send")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slots.Counter)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, StepsPerCall, "continue")
            .Add64(Register.R1, 1)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.Counter, Register.R1);
        EmitStep(code, maxDepth, "read_error", "step_next", "truncated");
        code.Label("step_next")
            .LoadMem(MemorySize.DoubleWord, frame, scratch, CurrentFrameSlot)
            .Jump("step");

        // Frames left after this run's steps: go on in a fresh run of this program. If the kernel refuses
        // (33 tail calls), the tail call returns and the sample is sent as it is.
        code.Label("continue")
            .StoreMem(MemorySize.DoubleWord, scratch, CurrentFrameSlot, frame)
            .StoreImm(MemorySize.DoubleWord, scratch, ContinuingSlot, 1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slots.Context)
            .LoadMap(Register.R2, StackSampleMaps.Continuation)
            .Mov64(Register.R3, 0)
            .Call(HelperFunction.TailCall)
            .StoreImm(MemorySize.DoubleWord, scratch, ContinuingSlot, 0)
            .Jump("truncated");
    }

    /// <summary>
    /// One frame (R6 = its address, R8 = the scratch value, R9 = the config): read it whole, keep its caller as where the
    /// walk goes on (the scratch value's current frame), and add (code object, position, first line) to the record —
    /// unless the frame is not a Python function's (<paramref name="skip"/>). A failed read jumps to
    /// <paramref name="readError"/>, a full record to <paramref name="truncated"/>; after adding a frame the step goes to
    /// <paramref name="skip"/> too. Uses R6 and R7; clobbers R0–R5.
    /// </summary>
    private static void EmitStep(InstructionBuilder code, int maxDepth, string readError, string skip, string truncated)
    {
        var frame = Register.R6;
        var position = Register.R7;
        var scratch = Register.R8;
        var config = Register.R9;
        code.Mov64(Register.R1, scratch).Add64(Register.R1, FrameBuffer)
            .LoadMem(MemorySize.Word, Register.R2, config, StackWalkConfig.FrameReadSizeOffset)
            .JumpIf(JumpCondition.Greater, Register.R2, StackWalkConfig.MaxFrameReadSize, readError)
            .Mov64(Register.R3, frame)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, readError);

        // The caller first: the rest of this step only reads the copy in the frame buffer.
        PickFrameField(code, scratch, config, StackWalkConfig.FramePreviousOffset, Register.R2);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R2, 0)
            .StoreMem(MemorySize.DoubleWord, scratch, CurrentFrameSlot, Register.R1);

        var labels = code.Scope("step");
        string ownerOk = labels["owner_ok"], positionInt = labels["position_int"], positionOk = labels["position_ok"];
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.FrameOwnerOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), ownerOk);
        PickFrameField(code, scratch, config, StackWalkConfig.FrameOwnerOffset, Register.R2);
        code.LoadMem(MemorySize.Byte, Register.R1, Register.R2, 0)
            .LoadMem(MemorySize.Word, Register.R2, config, StackWalkConfig.OwnerSkipFromOffset)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, Register.R2, skip)
            .Label(ownerOk);

        PickFrameField(code, scratch, config, StackWalkConfig.FrameCodeOffset, Register.R2);
        code.LoadMem(MemorySize.DoubleWord, frame, Register.R2, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R1, config, StackWalkConfig.CodeMaskOffset)
            .And64(frame, Register.R1)
            .JumpIf(JumpCondition.Equal, frame, 0, skip)
            .LoadMem(MemorySize.DoubleWord, Register.R1, config, StackWalkConfig.NoneAddressOffset)
            .JumpIf(JumpCondition.Equal, frame, Register.R1, skip);

        PickFrameField(code, scratch, config, StackWalkConfig.FramePositionOffset, Register.R2);
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.PositionIsPointerOffset)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, positionInt)
            .LoadMem(MemorySize.DoubleWord, position, Register.R2, 0)
            .Sub64(position, frame)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.CodeAdaptiveOffset)
            .Sub64(position, Register.R1)
            .Jump(positionOk)
            .Label(positionInt)
            .LoadMem(MemorySize.Word, position, Register.R2, 0)
            .Label(positionOk);

        // frame holds the code object now. The slot index comes from map memory, so the verifier sees one
        // state per step rather than one per depth.
        code.LoadMem(MemorySize.Word, Register.R1, scratch, Record(StackSampleRecord.FrameCountOffset))
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, maxDepth, truncated)
            .Add64(Register.R1, 1)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.FrameCountOffset), Register.R1)
            .Sub64(Register.R1, 1)
            .Lsh64(Register.R1, 4)
            .Mov64(Register.R2, scratch).Add64(Register.R2, RecordOffset + StackSampleRecord.HeaderSize)
            .Add64(Register.R2, Register.R1)
            .StoreMem(MemorySize.DoubleWord, Register.R2, 0, frame)
            .StoreMem(MemorySize.Word, Register.R2, 8, position)
            .Mov64(Register.R1, Register.R2).Add64(Register.R1, 12)
            .Mov64(Register.R2, 4)
            .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.CodeFirstLineNoOffset)
            .Add64(Register.R3, frame)
            .Call(HelperFunction.ProbeReadUser)
            .Jump(skip);
    }

    /// <summary>R2 = address in the frame buffer of the field whose offset the config holds at <paramref name="configOffset"/>.</summary>
    private static void PickFrameField(InstructionBuilder code, Register scratch, Register config, int configOffset, Register into)
    {
        code.LoadMem(MemorySize.Word, Register.R1, config, (short)configOffset)
            .And64(Register.R1, FieldMask)
            .Mov64(into, scratch).Add64(into, FrameBuffer)
            .Add64(into, Register.R1);
    }

    /// <summary>Reads the u64 at <c>base + config[configOffset]</c> into the read slot; a failed read jumps to <paramref name="onError"/>.</summary>
    private static void EmitReadField(InstructionBuilder code, Register scratch, Register baseAddress, Register config, int configOffset, string onError)
    {
        code.Mov64(Register.R1, scratch).Add64(Register.R1, ReadSlot)
            .Mov64(Register.R2, 8)
            .LoadMem(MemorySize.Word, Register.R3, config, (short)configOffset)
            .Add64(Register.R3, baseAddress)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, onError);
    }

    public static short Record(int recordOffset) => (short)(RecordOffset + recordOffset);
}
