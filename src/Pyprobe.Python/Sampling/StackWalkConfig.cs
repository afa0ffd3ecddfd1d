using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// Where one process keeps what the stack-walking program reads: the runtime's address and the byte
/// offsets along runtime → interpreter → thread state → frame → code object. It is data, not code, so
/// one loaded program walks every CPython version at once (a machine-wide profile mixes versions);
/// the kernel reads it from a map keyed by process id.
/// </summary>
public sealed record StackWalkConfig
{
    /// <summary>Marks an offset the version does not have (no cframe indirection, no owner field).</summary>
    public const uint Absent = uint.MaxValue;

    /// <summary>Bytes of a frame read in one go; every frame field offset must lie inside it.</summary>
    public const int MaxFrameReadSize = 128;

    public required ulong RuntimeAddress { get; init; }
    /// <summary><c>&amp;_Py_NoneStruct</c> in the process: 3.13 marks its C-entry frames with None as the code; 0 if not needed.</summary>
    public ulong NoneAddress { get; init; }
    /// <summary>AND-ed with the frame's code field: 3.14+ tags <c>f_executable</c> in its low bits.</summary>
    public ulong CodeMask { get; init; } = ulong.MaxValue;

    public required uint InterpretersHead { get; init; }
    public required uint InterpreterNext { get; init; }
    public required uint InterpreterThreadsHead { get; init; }
    public required uint ThreadNext { get; init; }
    /// <summary>The thread-state field compared with the sampled thread: native_thread_id, or thread_id before 3.11.</summary>
    public required uint ThreadMatch { get; init; }
    /// <summary>True where only <c>thread_id</c> (= <c>pthread_self()</c> = the thread's fsbase on glibc) exists (≤ 3.10).</summary>
    public required bool MatchByFsBase { get; init; }
    public required uint ThreadTopFrame { get; init; }
    /// <summary>3.11/3.12: the top-frame field is a <c>_PyCFrame*</c>; this is <c>current_frame</c> inside it.</summary>
    public uint CFrameCurrentFrame { get; init; } = Absent;

    public required uint FrameReadSize { get; init; }
    public required uint FrameCode { get; init; }
    public required uint FramePrevious { get; init; }
    public required uint FramePosition { get; init; }
    /// <summary>True where the position field is a pointer into the bytecode (3.11+), false for an int <c>f_lasti</c>.</summary>
    public required bool PositionIsPointer { get; init; }
    /// <summary>Subtracted (with the code address) from a position pointer: <c>offsetof(PyCodeObject, co_code_adaptive)</c>.</summary>
    public uint CodeAdaptive { get; init; }
    public uint FrameOwner { get; init; } = Absent;
    /// <summary>Frames whose owner is at least this are the interpreter's own (C-stack shims, sentinels): skipped, and the frame before each marked the first of its eval-loop run.</summary>
    public uint OwnerSkipFrom { get; init; } = 256;
    /// <summary>3.11: the frame's <c>is_entry</c> byte, set on the first frame of an eval-loop run (later versions put a shim frame behind it).</summary>
    public uint FrameIsEntry { get; init; } = Absent;
    public required uint CodeFirstLineNo { get; init; }
    /// <summary>Offset of <c>task_struct.thread.fsbase</c> in this kernel (from its BTF); only read where <see cref="MatchByFsBase"/>.</summary>
    public uint TaskFsBase { get; init; }
    /// <summary>
    /// The process's pid namespace when it is not pyprobe's: <see cref="ThreadMatch"/> then holds the thread's id
    /// inside it, which the walk asks the kernel for. Null: the ids the kernel reports are the ones to match.
    /// </summary>
    public PidNamespace? PidNamespace { get; init; }

    /// <summary>Bytes of a code object copied the first time the walk meets it (0: none), through its last named field.</summary>
    public uint CodeCopySize { get; init; }
    /// <summary>The code object's name (co_qualname, or co_name before 3.11), file name and line table pointers: the objects copied with it.</summary>
    public uint CodeName { get; init; }
    public uint CodeFilename { get; init; }
    public uint CodeLineTable { get; init; }
    /// <summary>co_flags: the walk that copies reads it with the first line, which lies at most 28 bytes above it.</summary>
    public uint CodeFlags { get; init; }

    /// <summary>
    /// Whether the sampled thread holds the GIL (<c>record --gil</c>), up to 3.11: the address of the runtime's holder
    /// (<c>gilstate.tstate_current</c>), compared with the thread state; 0 where not asked or not this way.
    /// </summary>
    public ulong GilHolderAddress { get; init; }
    /// <summary>3.12+: the thread state's <c>interp</c>, whose <c>ceval.gil</c> (<see cref="InterpreterGil"/>) is read, then its last holder and locked flag.</summary>
    public uint ThreadInterpreter { get; init; } = Absent;
    /// <summary>3.12+: the interpreter's <c>ceval.gil</c> pointer; <see cref="Absent"/> where not asked or not this way.</summary>
    public uint InterpreterGil { get; init; } = Absent;
    /// <summary>3.12+: <c>last_holder</c> inside <c>_gil_runtime_state</c>; the int <c>locked</c> follows it 8 bytes on (one read takes both).</summary>
    public uint GilLastHolder { get; init; }

    /// <summary>3.14+: the thread state's <c>asyncio_running_task</c>, sent in the record's thread-state slot (<c>record --tasks</c>); <see cref="Absent"/> otherwise.</summary>
    public uint RunningTask { get; init; } = Absent;

    /// <summary>
    /// <c>record --tasks</c>: the frame field that tells a generator's (or coroutine's) frame, so the walk notes the
    /// outermost such frame, the running task's coroutine (an asyncio task's coroutine is driven from C, under the loop's
    /// plain frames), and its index among the sample's frames (<see cref="TaskSnapshot.CoroutineFrame"/>). Before 3.14,
    /// whose thread states do not name the task they run (<see cref="RunningTask"/> absent), its generator goes in the
    /// record's thread-state slot, and user space finds the task whose coroutine it is. Up to 3.10 the frame's
    /// <c>f_gen</c> pointer (null for a function's frame); 3.11+ the frame's owner byte, <see cref="OwnedByGenerator"/>
    /// for a generator's, whose object lies <see cref="CoroutineFrame"/> bytes before its inline frame.
    /// <see cref="Absent"/> otherwise.
    /// </summary>
    public uint RunningCoroutine { get; init; } = Absent;
    /// <summary>3.11+: <c>offsetof(PyGenObject, gi_iframe)</c>, where <see cref="RunningCoroutine"/> is the owner byte; <see cref="Absent"/> where it is <c>f_gen</c>.</summary>
    public uint CoroutineFrame { get; init; } = Absent;

    /// <summary>FRAME_OWNED_BY_GENERATOR, on every version that has an owner byte (3.11+).</summary>
    public const int OwnedByGenerator = 1;

    /// <summary>
    /// <c>record --tasks</c>: <c>offsetof(TaskObj, task_name)</c>, so each sample taken in a task carries a copy of the
    /// task's name object as it was (<see cref="TaskSnapshot"/>): a task that ends before its samples are drained is
    /// still named, and a task made at an ended one's addresses is told from it. <see cref="Absent"/> otherwise.
    /// </summary>
    public uint TaskName { get; init; } = Absent;
    /// <summary>
    /// Before 3.14, with <see cref="TaskName"/>: <c>offsetof(TaskObj, task_coro)</c>. The task is found in the kernel
    /// from the frame under its coroutine's, the event loop's <c>Handle._run</c>: its <c>self</c> (the handle), the
    /// handle's callback (the step or wakeup wrapper, or the bound wakeup method), whose task is the one whose
    /// <c>task_coro</c> is the sample's coroutine. <see cref="Absent"/> otherwise.
    /// </summary>
    public uint TaskCoro { get; init; } = Absent;
    /// <summary>With <see cref="TaskCoro"/>: where a frame's local variables start (<c>f_localsplus</c>, or <c>localsplus</c> 3.11+), the first being <c>self</c>.</summary>
    public uint FrameLocals { get; init; } = Absent;

    public const int Size = 184;

    internal const int RuntimeAddressOffset = 0, NoneAddressOffset = 8, CodeMaskOffset = 16,
        InterpretersHeadOffset = 24, InterpreterNextOffset = 28, InterpreterThreadsHeadOffset = 32,
        ThreadNextOffset = 36, ThreadMatchOffset = 40, MatchByFsBaseOffset = 44, ThreadTopFrameOffset = 48,
        CFrameCurrentFrameOffset = 52, FrameReadSizeOffset = 56, FrameCodeOffset = 60, FramePreviousOffset = 64,
        FramePositionOffset = 68, PositionIsPointerOffset = 72, CodeAdaptiveOffset = 76, FrameOwnerOffset = 80,
        OwnerSkipFromOffset = 84, CodeFirstLineNoOffset = 88, TaskFsBaseOffset = 92, PidNamespaceDeviceOffset = 96,
        PidNamespaceInodeOffset = 104, CodeCopySizeOffset = 112, CodeNameOffset = 116, CodeFilenameOffset = 120,
        CodeLineTableOffset = 124, CodeFlagsOffset = 128, GilHolderAddressOffset = 136, ThreadInterpreterOffset = 144,
        InterpreterGilOffset = 148, GilLastHolderOffset = 152, FrameIsEntryOffset = 156, RunningTaskOffset = 160,
        RunningCoroutineOffset = 164, CoroutineFrameOffset = 168, TaskNameOffset = 172, TaskCoroOffset = 176, FrameLocalsOffset = 180;

    /// <summary>The map value the program reads.</summary>
    public byte[] ToBytes()
    {
        Validate();
        var bytes = new byte[Size];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(span[RuntimeAddressOffset..], RuntimeAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(span[NoneAddressOffset..], NoneAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(span[CodeMaskOffset..], CodeMask);
        void U32(int at, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), value);
        U32(InterpretersHeadOffset, InterpretersHead);
        U32(InterpreterNextOffset, InterpreterNext);
        U32(InterpreterThreadsHeadOffset, InterpreterThreadsHead);
        U32(ThreadNextOffset, ThreadNext);
        U32(ThreadMatchOffset, ThreadMatch);
        U32(MatchByFsBaseOffset, MatchByFsBase ? 1u : 0u);
        U32(ThreadTopFrameOffset, ThreadTopFrame);
        U32(CFrameCurrentFrameOffset, CFrameCurrentFrame);
        U32(FrameReadSizeOffset, FrameReadSize);
        U32(FrameCodeOffset, FrameCode);
        U32(FramePreviousOffset, FramePrevious);
        U32(FramePositionOffset, FramePosition);
        U32(PositionIsPointerOffset, PositionIsPointer ? 1u : 0u);
        U32(CodeAdaptiveOffset, CodeAdaptive);
        U32(FrameOwnerOffset, FrameOwner);
        U32(OwnerSkipFromOffset, OwnerSkipFrom);
        U32(CodeFirstLineNoOffset, CodeFirstLineNo);
        U32(TaskFsBaseOffset, TaskFsBase);
        BinaryPrimitives.WriteUInt64LittleEndian(span[PidNamespaceDeviceOffset..], PidNamespace?.Device ?? 0);
        BinaryPrimitives.WriteUInt64LittleEndian(span[PidNamespaceInodeOffset..], PidNamespace?.Inode ?? 0);
        U32(CodeCopySizeOffset, CodeCopySize);
        U32(CodeNameOffset, CodeName);
        U32(CodeFilenameOffset, CodeFilename);
        U32(CodeLineTableOffset, CodeLineTable);
        U32(CodeFlagsOffset, CodeFlags);
        BinaryPrimitives.WriteUInt64LittleEndian(span[GilHolderAddressOffset..], GilHolderAddress);
        U32(ThreadInterpreterOffset, ThreadInterpreter);
        U32(InterpreterGilOffset, InterpreterGil);
        U32(GilLastHolderOffset, GilLastHolder);
        U32(FrameIsEntryOffset, FrameIsEntry);
        U32(RunningTaskOffset, RunningTask);
        U32(RunningCoroutineOffset, RunningCoroutine);
        U32(CoroutineFrameOffset, CoroutineFrame);
        U32(TaskNameOffset, TaskName);
        U32(TaskCoroOffset, TaskCoro);
        U32(FrameLocalsOffset, FrameLocals);
        return bytes;
    }

    private void Validate()
    {
        if (FrameReadSize is 0 or > MaxFrameReadSize)
            throw new ArgumentOutOfRangeException(nameof(FrameReadSize), $"a frame is read in at most {MaxFrameReadSize} bytes");
        Inside(FrameCode, 8, nameof(FrameCode));
        Inside(FramePrevious, 8, nameof(FramePrevious));
        Inside(FramePosition, PositionIsPointer ? 8u : 4u, nameof(FramePosition));
        if (FrameOwner != Absent) Inside(FrameOwner, 1, nameof(FrameOwner));
        if (FrameIsEntry != Absent) Inside(FrameIsEntry, 1, nameof(FrameIsEntry));
        if (RunningCoroutine != Absent) Inside(RunningCoroutine, CoroutineFrame == Absent ? 8u : 1u, nameof(RunningCoroutine));
        if (TaskCoro != Absent && (RunningTask != Absent || RunningCoroutine == Absent || TaskName == Absent || FrameLocals == Absent))
            throw new ArgumentException("a task is found through its coroutine, with its name and the frame's locals, only where the thread state does not say it", nameof(TaskCoro));
        if (CodeCopySize > CodeCaptureRecord.CodeBytes || CodeCopySize % 8 != 0)
            throw new ArgumentOutOfRangeException(nameof(CodeCopySize), $"a code object is copied in at most {CodeCaptureRecord.CodeBytes} bytes, a multiple of 8");
        foreach (var (pointer, name) in new[] { (CodeName, nameof(CodeName)), (CodeFilename, nameof(CodeFilename)), (CodeLineTable, nameof(CodeLineTable)) })
            if (CodeCopySize > 0 && (pointer % 8 != 0 || pointer + 8 > CodeCopySize))
                throw new ArgumentOutOfRangeException(name, $"pointer at {pointer} lies outside the {CodeCopySize} bytes copied of a code object");
        if (CodeCopySize > 0 && (CodeFirstLineNo < CodeFlags || CodeFirstLineNo - CodeFlags > 28 || (CodeFirstLineNo - CodeFlags) % 4 != 0))
            throw new ArgumentOutOfRangeException(nameof(CodeFlags), $"co_firstlineno at {CodeFirstLineNo} is not within 28 bytes above co_flags at {CodeFlags}");
        if (GilHolderAddress != 0 && InterpreterGil != Absent)
            throw new ArgumentException("the GIL's holder is read from the runtime or through the interpreter, not both", nameof(InterpreterGil));
        if (InterpreterGil != Absent && ThreadInterpreter == Absent)
            throw new ArgumentException("the GIL read through the interpreter needs the thread state's interp offset", nameof(ThreadInterpreter));
        if (MatchByFsBase && TaskFsBase == 0)
            throw new ArgumentException("a walk that matches threads by fsbase needs the kernel's task_struct.thread.fsbase offset", nameof(TaskFsBase));
    }

    private void Inside(uint offset, uint width, string name)
    {
        if (offset + width > FrameReadSize)
            throw new ArgumentOutOfRangeException(name, $"field at {offset} lies outside the {FrameReadSize} bytes read of a frame");
    }
}
