using Pyprobe.Python.Processes;

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
    /// <summary>Code object copies the ring could not take (their frames are then named from the process, as before).</summary>
    public const int CopiesLostOffset = OtherCounterOffset + 8;
    /// <summary>Native stack copies (<c>--native</c>) the ring could not take: their samples keep their Python frames only.</summary>
    public const int NativeLostOffset = CopiesLostOffset + 8;
    // record --tasks: the outermost generator the walk met (0: none), its frame's index in the record (-1: none), and the
    // frame under it (UnderFrameWanted until the walk meets one), kept across tail calls; the task found at the send.
    private const int GeneratorSlot = NativeLostOffset + 8;
    private const int GeneratorIndexSlot = GeneratorSlot + 8;
    private const int UnderFrameSlot = GeneratorIndexSlot + 8;
    private const int TaskSlot = UnderFrameSlot + 8;
    private const int UnderFrameWanted = 1;
    public const int RecordOffset = TaskSlot + 8;
    private const int FieldMask = StackWalkConfig.MaxFrameReadSize - 1;

    /// <summary>Frames one run of the program steps through before it tail-calls itself to go on.</summary>
    public const int StepsPerCall = 64;

    /// <summary>Interpreters walked per process when looking for a thread state (the main one and subinterpreters).</summary>
    public const int MaxInterpreters = 4;
    /// <summary>Thread states walked per interpreter on a cache miss.</summary>
    public const int MaxThreadsPerInterpreter = 256;

    /// <summary>Deepest walk offered: the per-CPU scratch value (≤ 32 KiB) holds the record, and 33 tail calls × <see cref="StepsPerCall"/> steps reach it.</summary>
    public const int MaxDepthLimit = 1024;

    public static int ScratchValueSize(int maxDepth) => CopyOffset(maxDepth) + CodeCaptureRecord.MinSize + TableRoom(maxDepth);

    /// <summary>The most a per-CPU value may hold (PCPU_MIN_UNIT_SIZE).</summary>
    private const int PerCpuValueLimit = 32768;

    /// <summary>
    /// Room for a line table's copy: what the scratch value has left after the sample's record (15 KB at the deepest walk,
    /// 23 KB at the default 512 frames, 24 KB at most). A module body's table is a few hundred bytes; 99.5% of the
    /// standard library's are under 12 KB.
    /// </summary>
    public static int TableRoom(int maxDepth) => Math.Min(24 * 1024, (PerCpuValueLimit - CopyOffset(maxDepth) - CodeCaptureRecord.MinSize) & ~7);

    /// <summary>Where the copies of a code object met for the first time are put together: after the sample's record.</summary>
    private static int CopyOffset(int maxDepth) => RecordOffset + StackSampleRecord.HeaderSize + maxDepth * StackSampleRecord.FrameSize;

    /// <summary>
    /// Entries of the direct-mapped table of code objects already copied (<see cref="StackSampleMaps.CodesSeen"/>): 1 MiB,
    /// room for the hot code of many processes (a machine-wide profile, serve) before entries collide.
    /// </summary>
    public const uint CodesSeenEntries = 65536;

    /// <summary>An odd multiplier (2^16 / golden ratio) that spreads consecutive pids over the table's index bits.</summary>
    private const int PidSpread = 40503;
    /// <summary>One entry: u64 code object, u32 pid, u32 tag (its first line, with its file name for a body that is not a function's).</summary>
    public const uint CodesSeenValueSize = 16;

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
    public static void EmitSampleIfConfigured(InstructionBuilder code, Slots slots, int maxDepth, int wakeupThreshold, StackSampleFlags recordFlags, int nativeStackBytes = 0,
        bool kernelStack = false)
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
        EmitWalk(code, slots, maxDepth, wakeupThreshold, recordFlags, nativeStackBytes, kernelStack);
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
    /// <param name="nativeStackBytes">With <c>--native</c>: the most of the thread's stack copied ahead of each sample (<see cref="EmitNativeCapture"/>); 0 for none.</param>
    /// <param name="kernelStack">With <c>--kernel</c> (and a native copy): the kernel's frames go in the native record too.</param>
    public static void EmitWalk(InstructionBuilder code, Slots slots, int maxDepth, int wakeupThreshold, StackSampleFlags recordFlags, int nativeStackBytes = 0,
        bool kernelStack = false)
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
            .AtomicAdd64(scratch, SamplesCounterOffset, Register.R1)
            .StoreImm(MemorySize.DoubleWord, scratch, GeneratorSlot, 0)
            .StoreImm(MemorySize.DoubleWord, scratch, GeneratorIndexSlot, -1)
            .StoreImm(MemorySize.DoubleWord, scratch, UnderFrameSlot, 0);

        code.Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.TimeOffset), Register.R0)
            .Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.PidOffset), Register.R1)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.TidOffset), pidTgid)
            .StoreImm(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), 0)
            .StoreImm(MemorySize.Word, scratch, Record(StackSampleRecord.FrameCountOffset), 0)
            .StoreImm(MemorySize.Word, scratch, Record(StackSampleRecord.FlagsOffset), (int)recordFlags);
        if (nativeStackBytes > 0) EmitNativeCapture(code, slots, nativeStackBytes, kernelStack, wakeupThreshold);

        EmitExpectedThreadId(code, scratch, config, pidTgid);
        EmitFindThreadState(code, slots, frame, pidTgid, scratch, config);

        // The innermost frame: tstate->frame, tstate->cframe->current_frame or tstate->current_frame.
        code.Label("have_tstate")
            .StoreMem(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), frame);
        // record --tasks (3.14+): the slot carries the asyncio task the thread runs instead (0: none, or unreadable).
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.RunningTaskOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), "task_read")
            .StoreImm(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), 0);
        EmitReadField(code, scratch, frame, config, StackWalkConfig.RunningTaskOffset, "task_read");
        code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
            .StoreMem(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), Register.R1)
            .Label("task_read");
        EmitGilState(code, scratch, frame, config);
        EmitReadField(code, scratch, frame, config, StackWalkConfig.ThreadTopFrameOffset, "send");
        code.LoadMem(MemorySize.DoubleWord, frame, scratch, ReadSlot)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.CFrameCurrentFrameOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), "walk_frames")
            .JumpIf(JumpCondition.Equal, frame, 0, "send");
        EmitReadField(code, scratch, frame, config, StackWalkConfig.CFrameCurrentFrameOffset, "send");
        code.LoadMem(MemorySize.DoubleWord, frame, scratch, ReadSlot);

        EmitFrameWalk(code, slots, maxDepth, wakeupThreshold);

        code.Label("send")
            .LoadMem(MemorySize.Word, Register.R6, scratch, Record(StackSampleRecord.FrameCountOffset))
            .JumpIf(JumpCondition.LessOrEqual, Register.R6, maxDepth, "size_ok")
            .Mov64(Register.R6, maxDepth)
            .Label("size_ok")
            .Lsh64(Register.R6, 4);
        EmitRunningTask(code);
        RingOutput.Emit(code, StackSampleMaps.Ring, scratch, RecordOffset, Register.R6, StackSampleRecord.HeaderSize, scratch, LostCounterOffset, wakeupThreshold);
    }

    private const int PageSize = 4096;

    /// <summary>Where a Handle keeps its callback (<c>asyncio.events.Handle</c>'s slots, sorted: <c>_args</c>, then <c>_callback</c>; 3.8–3.15).</summary>
    private const int HandleCallback = 24;

    /// <summary>
    /// Where the callback's task is: a <c>TaskStepMethWrapper</c>'s <c>sw_task</c> (a task's first step, and after a bare
    /// <c>yield</c>; 3.8/3.9's <c>TaskWakeupMethWrapper</c> too), a bound method's <c>m_self</c> (<c>task_wakeup</c>, after a future).
    /// </summary>
    private static readonly int[] CallbackTask = [16, 24];

    /// <summary>
    /// <c>record --tasks</c>, at the send (R6 = the frames' bytes, R8 = the scratch value, R9 = the config): the record's
    /// thread-state slot gets the outermost generator before 3.14; then, with <see cref="StackWalkConfig.TaskName"/>, the
    /// task the sample was taken in goes after the frames as a <see cref="TaskSnapshot"/>, its name object copied (R6 grows
    /// by its size). From 3.14 the task is the thread state's; before, it is found from the frame that resumed the
    /// coroutine, the loop's <c>Handle._run</c>: its <c>self</c>, the handle's callback, and the task the callback holds
    /// whose <c>task_coro</c> is the generator (anything else — a plain generator, another loop — fails that check).
    /// Clobbers R0–R5 and R7.
    /// </summary>
    private static void EmitRunningTask(InstructionBuilder code)
    {
        var (size, snapshot, scratch, config) = (Register.R6, Register.R7, Register.R8, Register.R9);
        var labels = code.Scope("running_task");
        string fromThread = labels["from_thread"], found = labels["found"], done = labels["done"];
        const int absent = unchecked((int)StackWalkConfig.Absent);
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.RunningTaskOffset)
            .JumpIf32(JumpCondition.NotEqual, Register.R1, absent, fromThread)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.RunningCoroutineOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, absent, done)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, GeneratorSlot)
            .StoreMem(MemorySize.DoubleWord, scratch, Record(StackSampleRecord.ThreadStateOffset), Register.R1)
            .Label(fromThread)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.TaskNameOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, absent, done)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, Record(StackSampleRecord.ThreadStateOffset))
            .JumpIf(JumpCondition.Equal, Register.R1, 0, done)
            .StoreMem(MemorySize.DoubleWord, scratch, TaskSlot, Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.TaskCoroOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, absent, found);

        // Before 3.14: Handle._run's self, then its callback (kept in R7 while its two places are tried).
        code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, UnderFrameSlot)
            .JumpIf(JumpCondition.LessOrEqual, Register.R3, UnderFrameWanted, done)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.FrameLocalsOffset)
            .Add64(Register.R3, Register.R1);
        EmitReadAt(code, scratch, Register.R3, done);
        code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, ReadSlot)
            .Add64(Register.R3, HandleCallback);
        EmitReadAt(code, scratch, Register.R3, done);
        code.LoadMem(MemorySize.DoubleWord, snapshot, scratch, ReadSlot);
        foreach (var place in CallbackTask)
        {
            var next = labels[$"not_at_{place}"];
            code.Mov64(Register.R3, snapshot).Add64(Register.R3, place);
            EmitReadAt(code, scratch, Register.R3, next);
            code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, ReadSlot)
                .StoreMem(MemorySize.DoubleWord, scratch, TaskSlot, Register.R3)
                .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.TaskCoroOffset)
                .Add64(Register.R3, Register.R1);
            EmitReadAt(code, scratch, Register.R3, next);
            code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
                .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, GeneratorSlot)
                .JumpIf(JumpCondition.Equal, Register.R1, Register.R2, found)
                .Label(next);
        }
        code.Jump(done);

        // The snapshot, after the frames: the task, its name object and the name object's first bytes (zeros where a
        // read fails), the coroutine's frame.
        code.Label(found)
            .Mov64(snapshot, scratch).Add64(snapshot, RecordOffset + StackSampleRecord.HeaderSize)
            .Add64(snapshot, size)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, TaskSlot)
            .StoreMem(MemorySize.DoubleWord, snapshot, TaskSnapshot.TaskOffset, Register.R3)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, GeneratorIndexSlot)
            .StoreMem(MemorySize.Word, snapshot, TaskSnapshot.CoroutineFrameOffset, Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.TaskNameOffset)
            .Add64(Register.R3, Register.R1)
            .Mov64(Register.R1, snapshot).Add64(Register.R1, TaskSnapshot.NameObjectOffset)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            // The copy stops at the name object's page end: the page after it may not be there (an allocator's pool not
            // used yet), and a read that reaches into it fails whole. A name that goes on past it is read by pyprobe.
            .Mov64(Register.R1, snapshot).Add64(Register.R1, TaskSnapshot.NameOffset)
            .LoadMem(MemorySize.DoubleWord, Register.R3, snapshot, TaskSnapshot.NameObjectOffset)
            .Mov64(Register.R4, Register.R3).And64(Register.R4, PageSize - 1)
            .Mov64(Register.R2, PageSize).Sub64(Register.R2, Register.R4)
            .JumpIf(JumpCondition.LessOrEqual, Register.R2, TaskSnapshot.NameBytes, labels["name_size"])
            .Mov64(Register.R2, TaskSnapshot.NameBytes)
            .Label(labels["name_size"])
            .StoreMem(MemorySize.Word, snapshot, TaskSnapshot.NameLengthOffset, Register.R2)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, labels["name_read"])
            .StoreImm(MemorySize.Word, snapshot, TaskSnapshot.NameLengthOffset, 0)
            .Label(labels["name_read"])
            .Add64(size, TaskSnapshot.Size)
            .LoadMem(MemorySize.Word, Register.R1, scratch, Record(StackSampleRecord.FlagsOffset))
            .Or64(Register.R1, (int)StackSampleFlags.TaskSnapshot)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.FlagsOffset), Register.R1)
            .Label(done);
    }

    /// <summary>Reads the u64 at the address in <paramref name="address"/> into the read slot; a failed read jumps to <paramref name="onError"/>. Clobbers R0–R3.</summary>
    private static void EmitReadAt(InstructionBuilder code, Register scratch, Register address, string onError)
    {
        if (address != Register.R3) code.Mov64(Register.R3, address);
        code.Mov64(Register.R1, scratch).Add64(Register.R1, ReadSlot)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, onError);
    }

    /// <summary>Stack bytes read per step of the native copy: a page, so a read that fails is the one past the stack's end.</summary>
    private const int NativePage = 4096;

    /// <summary>The most <c>--native</c> copies of a stack: with its header and the verifier's page of room, a per-CPU value's limit.</summary>
    public const int MaxNativeStackBytes = 24 * 1024;

    /// <summary>The per-CPU value the native copy is put together in: its record, and a page of room the verifier needs to see.</summary>
    public static int NativeScratchValueSize(int nativeStackBytes, bool kernelStack = false) =>
        NativeStackRecord.StackOffset(kernelStack) + nativeStackBytes + NativePage;

    /// <summary>
    /// <c>--native</c>: sends a <see cref="NativeStackRecord"/> ahead of the sample — the thread's user registers (the
    /// <c>pt_regs</c> the kernel saved when the thread entered it: the interrupted ones when the tick found it in user
    /// code, the ones of its system call otherwise) and its stack from the stack pointer up, a page at a time up to
    /// <paramref name="stackBytes"/>, stopping at the first page that cannot be read (the top of the main thread's
    /// stack, or a page not present). With <paramref name="kernelStack"/> the kernel's own frames at that moment too
    /// (<c>bpf_get_stack</c>: the system call or the switch the thread is in; none when the tick found it in user code),
    /// in the record's room for them ahead of the stack. Expects R8 = the scratch value with the sample's header filled;
    /// clobbers R0–R6.
    /// </summary>
    private static void EmitNativeCapture(InstructionBuilder code, Slots slots, int stackBytes, bool kernelStack, int wakeupThreshold)
    {
        var stackOffset = NativeStackRecord.StackOffset(kernelStack);
        if (stackBytes is < NativePage or > MaxNativeStackBytes || stackBytes % NativePage != 0)
            throw new ArgumentOutOfRangeException(nameof(stackBytes), $"the native stack copy is 4 to 24 KiB, whole pages");
        var (native, scratch) = (Register.R6, Register.R8);
        var labels = code.Scope("native");
        string send = labels["send"], done = labels["done"];
        code.StoreImm(MemorySize.Word, Register.FramePointer, slots.TidKey, 0)
            .LoadMap(Register.R1, StackSampleMaps.NativeScratch)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, slots.TidKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, done)
            .Mov64(native, Register.R0)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, Record(StackSampleRecord.TimeOffset))
            .StoreMem(MemorySize.DoubleWord, native, StackSampleRecord.TimeOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, Record(StackSampleRecord.PidOffset))
            .StoreMem(MemorySize.DoubleWord, native, StackSampleRecord.PidOffset, Register.R1)
            .StoreImm(MemorySize.DoubleWord, native, StackSampleRecord.ThreadStateOffset, 0)
            .StoreImm(MemorySize.Word, native, NativeStackRecord.StackBytesOffset, 0)
            .StoreImm(MemorySize.Word, native, StackSampleRecord.FlagsOffset,
                (int)(StackSampleFlags.NativeStack | (kernelStack ? StackSampleFlags.KernelStack : StackSampleFlags.None)))
            .Call(HelperFunction.GetCurrentTaskBtf)
            .Mov64(Register.R1, Register.R0)
            .Call(HelperFunction.TaskPtRegs)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, PtRegs.Ip)
            .StoreMem(MemorySize.DoubleWord, native, NativeStackRecord.IpOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, PtRegs.Sp)
            .StoreMem(MemorySize.DoubleWord, native, NativeStackRecord.SpOffset, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, PtRegs.Rbp)
            .StoreMem(MemorySize.DoubleWord, native, NativeStackRecord.BpOffset, Register.R1);
        EmitNativeCopyLimit(code, native, stackBytes);
        // A page (or what is left of the first one) per read: a stack ends at a page boundary, and a read that crosses
        // into an unmapped page fails whole (and costs a fault: the limit above keeps the copy short of one).
        for (var page = 0; page <= stackBytes / NativePage; page++)
        {
            string whole = labels[$"whole{page}"];
            code.LoadMem(MemorySize.Word, Register.R1, native, NativeStackRecord.StackBytesOffset)
                .LoadMem(MemorySize.Word, Register.R5, native, NativeLimitSlot)
                .JumpIf(JumpCondition.Greater, Register.R5, stackBytes, send)
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, Register.R5, send)
                .LoadMem(MemorySize.DoubleWord, Register.R3, native, NativeStackRecord.SpOffset)
                .Add64(Register.R3, Register.R1)
                .Mov64(Register.R4, Register.R3).And64(Register.R4, NativePage - 1)
                .Mov64(Register.R2, NativePage).Sub64(Register.R2, Register.R4)
                .Sub64(Register.R5, Register.R1)
                .JumpIf(JumpCondition.LessOrEqual, Register.R2, Register.R5, whole)
                .Mov64(Register.R2, Register.R5)
                .Label(whole)
                .JumpIf(JumpCondition.Greater, Register.R2, NativePage, send)
                .JumpIf(JumpCondition.Greater, Register.R1, stackBytes, send)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.Counter, Register.R2)
                .Add64(Register.R1, stackOffset)
                .Add64(Register.R1, native)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, send)
                .LoadMem(MemorySize.Word, Register.R1, native, NativeStackRecord.StackBytesOffset)
                .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, slots.Counter)
                .Add64(Register.R1, Register.R2)
                .StoreMem(MemorySize.Word, native, NativeStackRecord.StackBytesOffset, Register.R1);
        }
        // The ring's output needs the record and its size in registers that survive helper calls: R7 (the pid/tgid)
        // lends itself for the send and is put back.
        code.Label(send)
            .StoreImm(MemorySize.DoubleWord, native, NativeLimitSlot, 0);
        if (kernelStack)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slots.Context)
                .Mov64(Register.R2, native).Add64(Register.R2, NativeStackRecord.HeaderSize)
                .Mov64(Register.R3, NativeStackRecord.KernelRoom)
                .Mov64(Register.R4, 0)
                .Call(HelperFunction.GetStack)
                .JumpIf(JumpCondition.SignedLess, Register.R0, 0, labels["no_kernel"])
                .StoreMem(MemorySize.Word, native, NativeStackRecord.KernelBytesOffset, Register.R0)
                .Label(labels["no_kernel"]);
        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.CacheValue, Register.R7)
            .LoadMem(MemorySize.Word, Register.R7, native, NativeStackRecord.StackBytesOffset)
            .JumpIf(JumpCondition.Greater, Register.R7, stackBytes, labels["restore"]);
        RingOutput.Emit(code, StackSampleMaps.Ring, native, 0, Register.R7, stackOffset, scratch, NativeLostOffset, wakeupThreshold);
        code.Label(labels["restore"])
            .LoadMem(MemorySize.DoubleWord, Register.R7, Register.FramePointer, slots.CacheValue);
        code.Label(done);
    }

    /// <summary>The record's thread-state field, unused in a native record: the copy's limit while it is made, 0 when sent.</summary>
    private const short NativeLimitSlot = StackSampleRecord.ThreadStateOffset;

    /// <summary>
    /// How much of the stack to copy: <paramref name="stackBytes"/>, or less where the stack is known to end sooner — the
    /// main thread's at <c>mm-&gt;start_stack</c> (the stack pointer the program started with: argv and the environment
    /// lie above it), a pthread's at its fsbase (glibc keeps the thread's descriptor and TLS at the top of its stack's
    /// mapping). A read past a mapping's end fails, but only after a page fault, which cost a sample here more than its
    /// whole 16 KiB copy. Leaves the limit in the record's <see cref="NativeLimitSlot"/>; clobbers R0–R5.
    /// </summary>
    private static void EmitNativeCopyLimit(InstructionBuilder code, Register native, int stackBytes)
    {
        var offsets = KernelBtf.VmlinuxMemberOffsets("task_struct.mm", "mm_struct.start_stack", "task_struct.thread.fsbase");
        var labels = code.Scope("limit");
        code.StoreImm(MemorySize.DoubleWord, native, NativeLimitSlot, stackBytes)
            .Call(HelperFunction.GetCurrentTask)
            .StoreMem(MemorySize.DoubleWord, native, NativeStackRecord.HeaderSize, Register.R0);
        // Each end, read into the first 8 bytes of the copy's room (overwritten by the copy after), bounds the limit.
        void Bound(int firstOffset, int? secondOffset, string label)
        {
            code.LoadMem(MemorySize.DoubleWord, Register.R3, native, NativeStackRecord.HeaderSize)
                .Add64(Register.R3, firstOffset)
                .Mov64(Register.R1, native).Add64(Register.R1, NativeStackRecord.HeaderSize + 8)
                .Mov64(Register.R2, 8)
                .Call(HelperFunction.ProbeReadKernel)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, label);
            if (secondOffset is int second)
                code.LoadMem(MemorySize.DoubleWord, Register.R3, native, NativeStackRecord.HeaderSize + 8)
                    .JumpIf(JumpCondition.Equal, Register.R3, 0, label)
                    .Add64(Register.R3, second)
                    .Mov64(Register.R1, native).Add64(Register.R1, NativeStackRecord.HeaderSize + 8)
                    .Mov64(Register.R2, 8)
                    .Call(HelperFunction.ProbeReadKernel)
                    .JumpIf(JumpCondition.NotEqual, Register.R0, 0, label);
            // end − sp, when the end lies above the stack pointer and closer than the limit
            code.LoadMem(MemorySize.DoubleWord, Register.R1, native, NativeStackRecord.HeaderSize + 8)
                .LoadMem(MemorySize.DoubleWord, Register.R2, native, NativeStackRecord.SpOffset)
                .JumpIf(JumpCondition.LessOrEqual, Register.R1, Register.R2, label)
                .Sub64(Register.R1, Register.R2)
                .LoadMem(MemorySize.DoubleWord, Register.R2, native, NativeLimitSlot)
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, Register.R2, label)
                .StoreMem(MemorySize.DoubleWord, native, NativeLimitSlot, Register.R1)
                .Label(label);
        }
        Bound(offsets[0], offsets[1], labels["main"]);
        Bound(offsets[2], null, labels["thread"]);
    }

    /// <summary>
    /// Flags the record <see cref="StackSampleFlags.HoldsGil"/> where the config asks and the thread state in
    /// <paramref name="tstate"/> holds the GIL: up to 3.11 the runtime's holder is it; from 3.12 its interpreter's GIL
    /// (<c>interp->ceval.gil</c>) is locked and was last taken by it. Uses the frame buffer, free until the walk starts;
    /// a failed read leaves the flag off.
    /// </summary>
    private static void EmitGilState(InstructionBuilder code, Register scratch, Register tstate, Register config)
    {
        code.LoadMem(MemorySize.DoubleWord, Register.R3, config, StackWalkConfig.GilHolderAddressOffset)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, "gil_through_interpreter")
            .Mov64(Register.R1, scratch).Add64(Register.R1, ReadSlot)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "gil_done")
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
            .JumpIf(JumpCondition.Equal, Register.R1, tstate, "gil_held")
            .Jump("gil_done")
            .Label("gil_through_interpreter")
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.InterpreterGilOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), "gil_done");
        EmitReadField(code, scratch, tstate, config, StackWalkConfig.ThreadInterpreterOffset, "gil_done");
        code.LoadMem(MemorySize.DoubleWord, Register.R4, scratch, ReadSlot)
            .JumpIf(JumpCondition.Equal, Register.R4, 0, "gil_done");
        EmitReadField(code, scratch, Register.R4, config, StackWalkConfig.InterpreterGilOffset, "gil_done");
        // last_holder and, 8 bytes on, locked: one read.
        code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, ReadSlot)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, "gil_done")
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.GilLastHolderOffset)
            .Add64(Register.R3, Register.R1)
            .Mov64(Register.R1, scratch).Add64(Register.R1, FrameBuffer)
            .Mov64(Register.R2, 16)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "gil_done")
            .LoadMem(MemorySize.Word, Register.R1, scratch, FrameBuffer + 8)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, "gil_done")
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, FrameBuffer)
            .JumpIf(JumpCondition.NotEqual, Register.R1, tstate, "gil_done")
            .Label("gil_held");
        EmitAddFlag(code, scratch, StackSampleFlags.HoldsGil);
        code.Label("gil_done");
    }

    /// <summary>Adds <paramref name="flag"/> to the record's flags (R1 clobbered).</summary>
    private static void EmitAddFlag(InstructionBuilder code, Register scratch, StackSampleFlags flag) =>
        code.LoadMem(MemorySize.Word, Register.R1, scratch, Record(StackSampleRecord.FlagsOffset))
            .Or64(Register.R1, (int)flag)
            .StoreMem(MemorySize.Word, scratch, Record(StackSampleRecord.FlagsOffset), Register.R1);

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
        code.Label("no_tstate");
        EmitAddFlag(code, scratch, StackSampleFlags.NoThreadState);
        code.Jump("send");

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
    private static void EmitFrameWalk(InstructionBuilder code, Slots slots, int maxDepth, int wakeupThreshold)
    {
        if (Bpf.Features.KernelFeatures.HasBpfLoop) EmitFrameWalkWithLoop(code, maxDepth, wakeupThreshold);
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
    private static void EmitFrameWalkWithLoop(InstructionBuilder code, int maxDepth, int wakeupThreshold)
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
            EmitStep(step, maxDepth, readError, next, truncated, wakeupThreshold);
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
    /// <paramref name="skip"/> too. Uses R6 and R7; clobbers R0–R5. With <paramref name="copyThreshold"/> (the loop form
    /// only: there the verifier checks the step once), a code object met for the first time is copied
    /// (<see cref="EmitCopyIfNew"/>) with that wakeup threshold.
    /// </summary>
    private static void EmitStep(InstructionBuilder code, int maxDepth, string readError, string skip, string truncated, int? copyThreshold = null)
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
        string shim = labels["shim"];
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.FrameOwnerOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), ownerOk);
        PickFrameField(code, scratch, config, StackWalkConfig.FrameOwnerOffset, Register.R2);
        code.LoadMem(MemorySize.Byte, Register.R1, Register.R2, 0)
            .LoadMem(MemorySize.Word, Register.R2, config, StackWalkConfig.OwnerSkipFromOffset)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, Register.R2, shim)
            .Label(ownerOk);
        EmitNoteGenerator(code, frame, scratch, config);

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
            .Mov64(position, Register.R2);
        // 3.11 marks the first frame of an eval-loop run in the frame itself.
        string notEntry = labels["not_entry"];
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.FrameIsEntryOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), notEntry);
        PickFrameField(code, scratch, config, StackWalkConfig.FrameIsEntryOffset, Register.R2);
        code.LoadMem(MemorySize.Byte, Register.R1, Register.R2, 0)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, notEntry);
        EmitMarkEntry(code, position);
        code.Label(notEntry);
        if (copyThreshold is int threshold)
        {
            EmitFirstLineAndTag(code);
            EmitCopyIfNew(code, maxDepth, skip, threshold);
        }
        else
        {
            code.Mov64(Register.R1, position).Add64(Register.R1, 12)
                .Mov64(Register.R2, 4)
                .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.CodeFirstLineNoOffset)
                .Add64(Register.R3, frame)
                .Call(HelperFunction.ProbeReadUser);
        }
        code.Jump(skip);

        // 3.12+: a shim frame (the one an eval-loop run starts with, or the thread's base) lies behind the first frame
        // of each run: that frame, the last one added, is marked.
        code.Label(shim)
            .LoadMem(MemorySize.Word, Register.R1, scratch, Record(StackSampleRecord.FrameCountOffset))
            .JumpIf(JumpCondition.Equal, Register.R1, 0, skip)
            .JumpIf(JumpCondition.Greater, Register.R1, maxDepth, skip)
            .Sub64(Register.R1, 1)
            .Lsh64(Register.R1, 4)
            .Mov64(Register.R2, scratch).Add64(Register.R2, RecordOffset + StackSampleRecord.HeaderSize)
            .Add64(Register.R2, Register.R1);
        EmitMarkEntry(code, Register.R2);
        code.Jump(skip);
    }

    /// <summary>Sets <see cref="StackSampleRecord.EntryFrameBit"/> in the position of the frame slot at <paramref name="slot"/> (R1 clobbered).</summary>
    private static void EmitMarkEntry(InstructionBuilder code, Register slot) =>
        code.LoadMem(MemorySize.Word, Register.R1, slot, 8)
            .Or64(Register.R1, unchecked((int)StackSampleRecord.EntryFrameBit))
            .StoreMem(MemorySize.Word, slot, 8, Register.R1);

    /// <summary>Bytes of a code object read from co_flags on: through co_firstlineno, which lies 4 bytes (3.8–3.10) to 28 bytes (3.11+) above it.</summary>
    private const int FlagsSpan = 32;

    /// <summary>
    /// Where copies are made (R6 = code object, R7 = the frame's slot in the record): one read from co_flags through
    /// co_firstlineno puts the first line in the slot and leaves in <see cref="TagSlot"/> what tells this code object from
    /// another that once had its address — its first line, and for a body that is not a function's (a module's or a
    /// class's, all of which start at line 1 or at their class statement, and are freed as soon as they ran) its file name
    /// too. Clobbers R0–R5.
    /// </summary>
    private static void EmitFirstLineAndTag(InstructionBuilder code)
    {
        var (codeObject, slot, scratch, config) = (Register.R6, Register.R7, Register.R8, Register.R9);
        var labels = code.Scope("tag");
        code.Mov64(Register.R1, scratch).Add64(Register.R1, FrameBuffer)
            .Mov64(Register.R2, FlagsSpan)
            .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.CodeFlagsOffset)
            .Add64(Register.R3, codeObject)
            .Call(HelperFunction.ProbeReadUser)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.CodeFirstLineNoOffset)
            .LoadMem(MemorySize.Word, Register.R2, config, StackWalkConfig.CodeFlagsOffset)
            .Sub64(Register.R1, Register.R2)
            .And64(Register.R1, FlagsSpan - 4)
            .Mov64(Register.R2, scratch).Add64(Register.R2, FrameBuffer)
            .Add64(Register.R2, Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, Register.R2, 0)
            .StoreMem(MemorySize.Word, slot, 12, Register.R1)
            .StoreMem(MemorySize.DoubleWord, scratch, TagSlot, Register.R1)
            .LoadMem(MemorySize.Word, Register.R2, scratch, FrameBuffer)
            .And64(Register.R2, CoOptimized)
            .JumpIf(JumpCondition.NotEqual, Register.R2, 0, labels["done"])
            .Mov64(Register.R1, scratch).Add64(Register.R1, ReadSlot)
            .Mov64(Register.R2, 8)
            .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.CodeFilenameOffset)
            .Add64(Register.R3, codeObject)
            .Call(HelperFunction.ProbeReadUser)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, ReadSlot)
            .Rsh64(Register.R1, 3)
            .LoadMem(MemorySize.DoubleWord, Register.R2, scratch, TagSlot)
            .Xor64(Register.R2, Register.R1)
            .StoreMem(MemorySize.DoubleWord, scratch, TagSlot, Register.R2)
            .Label(labels["done"]);
    }

    /// <summary>CO_OPTIMIZED: set on a function's code, not on a module's, class's or exec'd body.</summary>
    private const int CoOptimized = 1;

    /// <summary>The walk's ExpectedSlot, free once the thread is found: the tag of the code object being looked up.</summary>
    private const int TagSlot = ExpectedSlot;

    /// <summary>
    /// After a frame was added (R6 = its code object, R7 = its slot in the record, R8 = scratch, R9 = config): unless the
    /// table of code objects already copied holds this one (same address, process and tag), copies it and the
    /// name, file name and line table it points to into a <see cref="StackSampleFlags.CodeObject"/> record sent ahead of
    /// the sample. A module's or class's body is freed once it has run — during an import, often before user space could
    /// read it — and its frames were unknown; from the copies they are named. The table is direct-mapped, shared by the
    /// CPUs and written without locks: a collision or a torn entry costs a copy sent again, or one not sent (the frame is
    /// then read from the process, as before); user space checks every copy as it checks the process. Clobbers R0–R6
    /// (the code object's address is not needed after the frame's slot is filled).
    /// </summary>
    private static void EmitCopyIfNew(InstructionBuilder code, int maxDepth, string done, int wakeupThreshold)
    {
        var (codeObject, slot, scratch, config) = (Register.R6, Register.R7, Register.R8, Register.R9);
        var copy = CopyOffset(maxDepth);
        var labels = code.Scope("copy");
        string isNew = labels["new"];
        short pidField = Record(StackSampleRecord.PidOffset);
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.CodeCopySizeOffset)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, done)
            // The entry: bits of the address above an allocation's alignment, folded, and the pid spread over them (forked
            // workers run the same code objects at the same addresses: without it they took each other's entries, and a
            // pool of four sent ten copies a sample).
            .Mov64(Register.R1, codeObject).Rsh64(Register.R1, 4)
            .Mov64(Register.R2, codeObject).Rsh64(Register.R2, 20)
            .Xor64(Register.R1, Register.R2)
            .LoadMem(MemorySize.Word, Register.R2, scratch, pidField)
            .Mul64(Register.R2, PidSpread)
            .Xor64(Register.R1, Register.R2)
            .And64(Register.R1, (int)CodesSeenEntries - 1)
            .StoreMem(MemorySize.Word, scratch, ReadSlot, Register.R1)
            .LoadMap(Register.R1, StackSampleMaps.CodesSeen)
            .Mov64(Register.R2, scratch).Add64(Register.R2, ReadSlot)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, done)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .JumpIf(JumpCondition.NotEqual, Register.R1, codeObject, isNew)
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, 8)
            .LoadMem(MemorySize.Word, Register.R2, scratch, pidField)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, isNew)
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, 12)
            .LoadMem(MemorySize.Word, Register.R2, scratch, TagSlot)
            .JumpIf32(JumpCondition.Equal, Register.R1, Register.R2, done)
            .Label(isNew)
            .StoreMem(MemorySize.DoubleWord, Register.R0, 0, codeObject)
            .LoadMem(MemorySize.Word, Register.R2, scratch, pidField)
            .StoreMem(MemorySize.Word, Register.R0, 8, Register.R2)
            .LoadMem(MemorySize.Word, Register.R1, scratch, TagSlot)
            .StoreMem(MemorySize.Word, Register.R0, 12, Register.R1)
            // The record's header: the sample's pid, the code object where a sample has its thread state.
            .StoreImm(MemorySize.DoubleWord, scratch, (short)(copy + StackSampleRecord.TimeOffset), 0)
            .StoreMem(MemorySize.Word, scratch, (short)(copy + StackSampleRecord.PidOffset), Register.R2)
            .StoreImm(MemorySize.Word, scratch, (short)(copy + StackSampleRecord.TidOffset), 0)
            .StoreMem(MemorySize.DoubleWord, scratch, (short)(copy + StackSampleRecord.ThreadStateOffset), codeObject)
            .StoreImm(MemorySize.Word, scratch, (short)(copy + StackSampleRecord.FrameCountOffset), 0)
            .StoreImm(MemorySize.Word, scratch, (short)(copy + StackSampleRecord.FlagsOffset), (int)StackSampleFlags.CodeObject);
        for (var i = 0; i < CodeCaptureRecord.RegionCount; i++)
            code.StoreImm(MemorySize.DoubleWord, scratch, Region(copy, i), 0)
                .StoreImm(MemorySize.DoubleWord, scratch, (short)(Region(copy, i) + 8), 0);

        // The code object itself: a failed copy sends nothing (the frame is read from the process later, as before).
        code.Mov64(Register.R1, scratch).Add64(Register.R1, copy + CodeCaptureRecord.DataOffset(CodeCaptureRecord.CodeRegion))
            .LoadMem(MemorySize.Word, Register.R2, config, StackWalkConfig.CodeCopySizeOffset)
            .JumpIf(JumpCondition.Greater, Register.R2, CodeCaptureRecord.CodeBytes, done)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, done)
            .Mov64(Register.R3, codeObject)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, done)
            .StoreMem(MemorySize.DoubleWord, scratch, Region(copy, CodeCaptureRecord.CodeRegion), codeObject)
            .LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.CodeCopySizeOffset)
            .StoreMem(MemorySize.Word, scratch, (short)(Region(copy, CodeCaptureRecord.CodeRegion) + 8), Register.R1);
        EmitCopyPointee(code, copy, StackWalkConfig.CodeNameOffset, CodeCaptureRecord.NameRegion);
        EmitCopyPointee(code, copy, StackWalkConfig.CodeFilenameOffset, CodeCaptureRecord.FileRegion);
        EmitCopyPointee(code, copy, StackWalkConfig.CodeLineTableOffset, CodeCaptureRecord.TableRegion, TableRoom(maxDepth));
        // Sent up to the end of the line table's copy (the last region): most are a few hundred bytes of a 15-24 KB room.
        var tableLength = codeObject;
        var tableRegion = CodeCaptureRecord.TableRegion;
        code.LoadMem(MemorySize.Word, tableLength, scratch, (short)(Region(copy, tableRegion) + 8))
            .JumpIf(JumpCondition.LessOrEqual, tableLength, TableRoom(maxDepth), labels["length_ok"])
            .Mov64(tableLength, 0)
            .Label(labels["length_ok"]);
        RingOutput.Emit(code, StackSampleMaps.Ring, scratch, copy, tableLength, CodeCaptureRecord.DataOffset(tableRegion), scratch, CopiesLostOffset, wakeupThreshold);
    }

    private static short Region(int copy, int index) => (short)(copy + CodeCaptureRecord.RegionsOffset + index * CodeCaptureRecord.RegionSize);

    /// <summary>
    /// Copies the object whose pointer lies at <c>config[pointerOffset]</c> in the code object's copy into region
    /// <paramref name="region"/>. A str: its room's worth, or — where that runs into memory that is not mapped — up to the
    /// end of its page. A bytes object (the line table, with <paramref name="sizedRoom"/>): its header and its data as its
    /// ob_size says, or nothing if that exceeds the room (the frame is then read from the process). A pointer of 0 or a
    /// failed copy leaves the region empty. Clobbers R0–R5.
    /// </summary>
    private static void EmitCopyPointee(InstructionBuilder code, int copy, int pointerOffset, int region, int? sizedRoom = null)
    {
        var (scratch, config) = (Register.R8, Register.R9);
        var labels = code.Scope("pointee");
        string retry = labels["retry"], room = labels["room"], failed = labels["failed"], end = labels["end"], read = labels["read"];
        var data = copy + CodeCaptureRecord.DataOffset(region);
        var sized = sizedRoom is not null;
        var size = sizedRoom ?? CodeCaptureRecord.Room(region);
        var codeData = copy + CodeCaptureRecord.DataOffset(CodeCaptureRecord.CodeRegion);
        code.LoadMem(MemorySize.Word, Register.R1, config, (short)pointerOffset)
            .And64(Register.R1, (CodeCaptureRecord.CodeBytes - 1) & ~7)
            .Mov64(Register.R2, scratch).Add64(Register.R2, codeData)
            .Add64(Register.R2, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.R2, 0)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, end)
            .StoreMem(MemorySize.DoubleWord, scratch, Region(copy, region), Register.R3);
        if (sized)
        {
            code.Mov64(Register.R1, scratch).Add64(Register.R1, ReadSlot)
                .Mov64(Register.R2, 8)
                .Add64(Register.R3, PyObjectLayout.VarSize)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, end)
                .LoadMem(MemorySize.DoubleWord, Register.R4, scratch, ReadSlot)
                .JumpIf(JumpCondition.Greater, Register.R4, size - PyObjectLayout.BytesData, failed)
                .Add64(Register.R4, PyObjectLayout.BytesData)
                .Jump(read);
        }
        else
        {
            code.Mov64(Register.R1, scratch).Add64(Register.R1, data)
                .Mov64(Register.R2, size)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, retry)
                .StoreImm(MemorySize.Word, scratch, (short)(Region(copy, region) + 8), size)
                .Jump(end)
                .Label(retry)
                // The bytes to the end of the object's page.
                .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Region(copy, region))
                .Mov64(Register.R2, Register.R3).And64(Register.R2, 4095)
                .Mov64(Register.R4, 4096).Sub64(Register.R4, Register.R2)
                .JumpIf(JumpCondition.LessOrEqual, Register.R4, size, room)
                .Mov64(Register.R4, size)
                .Label(room);
        }
        code.Label(read)
            .JumpIf(JumpCondition.Equal, Register.R4, 0, failed)
            .JumpIf(JumpCondition.Greater, Register.R4, size, failed)
            .StoreMem(MemorySize.Word, scratch, (short)(Region(copy, region) + 8), Register.R4)
            .Mov64(Register.R2, Register.R4)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Region(copy, region))
            .Mov64(Register.R1, scratch).Add64(Register.R1, data)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, end)
            .Label(failed)
            .StoreImm(MemorySize.Word, scratch, (short)(Region(copy, region) + 8), 0)
            .Label(end);
    }

    /// <summary>R2 = address in the frame buffer of the field whose offset the config holds at <paramref name="configOffset"/>.</summary>
    private static void PickFrameField(InstructionBuilder code, Register scratch, Register config, int configOffset, Register into)
    {
        code.LoadMem(MemorySize.Word, Register.R1, config, (short)configOffset)
            .And64(Register.R1, FieldMask)
            .Mov64(into, scratch).Add64(into, FrameBuffer)
            .Add64(into, Register.R1);
    }

    /// <summary>
    /// <c>record --tasks</c> (<see cref="StackWalkConfig.RunningCoroutine"/>): where the frame in <paramref name="frame"/>
    /// (read into the frame buffer) is a generator's or coroutine's, its generator and its index in the record are noted;
    /// the walk goes outwards, so they end as the outermost one's, the coroutine of the task whose step runs (an asyncio
    /// task's coroutine is driven from C, under the loop's plain frames). The first function's frame outside it, the one
    /// that resumed it (the loop's <c>Handle._run</c>), is noted too (<see cref="EmitRunningTask"/>). Clobbers R1–R3.
    /// </summary>
    private static void EmitNoteGenerator(InstructionBuilder code, Register frame, Register scratch, Register config)
    {
        var labels = code.Scope("generator");
        string done = labels["done"], byPointer = labels["by_pointer"], store = labels["store"], plain = labels["plain"];
        code.LoadMem(MemorySize.Word, Register.R1, config, StackWalkConfig.RunningCoroutineOffset)
            .JumpIf32(JumpCondition.Equal, Register.R1, unchecked((int)StackWalkConfig.Absent), done)
            .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.CoroutineFrameOffset)
            .JumpIf32(JumpCondition.Equal, Register.R3, unchecked((int)StackWalkConfig.Absent), byPointer);
        // 3.11+: the owner byte says generator; the generator object holds the frame inline.
        PickFrameField(code, scratch, config, StackWalkConfig.RunningCoroutineOffset, Register.R2);
        code.LoadMem(MemorySize.Byte, Register.R1, Register.R2, 0)
            .JumpIf(JumpCondition.NotEqual, Register.R1, StackWalkConfig.OwnedByGenerator, plain)
            .LoadMem(MemorySize.Word, Register.R3, config, StackWalkConfig.CoroutineFrameOffset)
            .Mov64(Register.R1, frame)
            .Sub64(Register.R1, Register.R3)
            .Jump(store)
            .Label(byPointer);
        // Up to 3.10: the frame's f_gen, null for a function's frame.
        PickFrameField(code, scratch, config, StackWalkConfig.RunningCoroutineOffset, Register.R2);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R2, 0)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, plain)
            .Label(store)
            .StoreMem(MemorySize.DoubleWord, scratch, GeneratorSlot, Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, scratch, Record(StackSampleRecord.FrameCountOffset))
            .StoreMem(MemorySize.DoubleWord, scratch, GeneratorIndexSlot, Register.R1)
            .StoreImm(MemorySize.DoubleWord, scratch, UnderFrameSlot, UnderFrameWanted)
            .Jump(done)
            .Label(plain)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, UnderFrameSlot)
            .JumpIf(JumpCondition.NotEqual, Register.R1, UnderFrameWanted, done)
            .StoreMem(MemorySize.DoubleWord, scratch, UnderFrameSlot, frame)
            .Label(done);
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
