using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// The per-thread stack of open _PyEval_EvalFrameDefault activations: at a ret the frame is no longer in any
/// register, so the entry pushes its code object (a depth per thread, the frames in chunks of <see cref="ChunkFrames"/>)
/// and the ret pops it. Unbounded by depth (a thread gets chunks as it goes deeper), so a 500-deep recursion keeps
/// every name. Shared by the event and the call-statistics programs. Its maps are made by <see cref="PerThreadMaps"/>:
/// they grow as threads open activations and lose a thread's entries when it exits.
/// </summary>
public static class ActivationStack
{
    /// <summary>Low bit set on a pushed code object whose activation only creates a generator (see <see cref="EmitTagCreation"/>).</summary>
    public const int CreationTag = 1;

    /// <summary>Bit 1 set on a pushed code object whose activation is an <c>__init__</c> 3.13 runs inline (<see cref="InlineInitFrames"/>): its rets never come.</summary>
    public const int InlineInitTag = 2;

    /// <summary>CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR.</summary>
    public const int GeneratorLikeFlags = 0x20 | 0x80 | 0x200;

    // _frameowner FRAME_OWNED_BY_GENERATOR.
    private const int FrameOwnedByGenerator = 1;

    /// <summary>Hash u32 tid → (u32 activations open on that thread, u32 the most ever open: the depths its exit clears).</summary>
    public const string DepthsMap = "ef_depths";

    /// <summary>Bytes of a <see cref="DepthsMap"/> value.</summary>
    public const int DepthValueSize = 8;

    private const short DeepestOffset = 4;

    /// <summary>Hash (u32 tid, u32 depth / <see cref="ChunkFrames"/>) → the u64 code objects of the open activations at those depths.</summary>
    public const string FramesMap = "ef_frames";

    /// <summary>
    /// Open activations per <see cref="FramesMap"/> entry. A hash allocates its buckets (16 bytes per entry it may hold)
    /// when made: one entry per activation, 2^18 of them, took 8.5–10.7 ms of every attach that pushes; in chunks the
    /// same 2^18 activations take 2^14 entries. A push into a chunk the thread has is a store, not an update.
    /// </summary>
    public const int ChunkFrames = 16;

    private const int ChunkShift = 4;

    /// <summary>Bytes of a <see cref="FramesMap"/> value.</summary>
    public const int ChunkValueSize = ChunkFrames * 8;

    /// <summary>Array of one zeroed chunk: what a thread's new chunk is made from.</summary>
    public const string ZeroChunkMap = "ef_zero_chunk";

    /// <summary>Threads whose activations are kept, and open activations kept in all.</summary>
    public const uint MaxThreads = 16384, MaxFrames = 1 << 18;

    private const uint MaxChunks = MaxFrames / ChunkFrames;

    /// <summary>
    /// Makes the session's depths and frames and clears an exiting thread's entries from them. <paramref name="used"/>
    /// false: no program will push (entries alone), so the maps stay empty, an LRU fallback needs no room and no exit
    /// program is loaded.
    /// </summary>
    public static ActivationStackMaps CreateMaps(SessionCore core, string prefix, bool used = true)
    {
        var depths = PerThreadMaps.Create(core, $"{prefix}depth", 4, DepthValueSize, used ? MaxThreads : 1);
        var frames = PerThreadMaps.Create(core, $"{prefix}frames", 8, ChunkValueSize, used ? MaxChunks : 1);
        var zeroChunk = core.AddMap(MapSpec.Array($"{prefix}zchunk", ChunkValueSize, 1));
        if (used) PerThreadMaps.ClearOnExit(core, $"{prefix}_exit", ExitProgram(depths.Fd.Value, frames.Fd.Value));
        return new ActivationStackMaps(depths, frames, zeroChunk);
    }

    /// <summary>
    /// At a thread's exit (raw tracepoint sched_process_exit, which every thread passes): deletes every chunk of frames
    /// up to the deepest it ever reached (under bpf_loop; a pop leaves its chunk for the next push), then its depth.
    /// </summary>
    public static AssembledProgram ExitProgram(int depthsFd, int framesFd)
    {
        // The loop's context is a frame key: the thread id, then the chunk the round deletes.
        const short key = -8;
        const int deepestCleared = 1 << 20;
        var code = new InstructionBuilder();
        code.Call(HelperFunction.GetCurrentPidTgid)
            .StoreMem(MemorySize.Word, Register.FramePointer, key, Register.R0)
            .StoreImm(MemorySize.Word, Register.FramePointer, (short)(key + 4), 0);
        MapLookup.Emit(code, DepthsMap, key, "out")
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, DeepestOffset)
            .JumpIf(JumpCondition.LessOrEqual, Register.R1, deepestCleared, "rounds")
            .Mov64(Register.R1, deepestCleared)
            .Label("rounds")
            // Chunks 0 .. deepest / ChunkFrames.
            .Rsh64(Register.R1, ChunkShift)
            .Add64(Register.R1, 1);
        LoopCall.Emit(code, "clear_depth", key)
            .LoadMap(Register.R1, DepthsMap)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Call(HelperFunction.MapDeleteElem)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit()
            .Subprogram("clear_depth", round => round
                // R1 = the round (the chunk), R2 = the key.
                .StoreMem(MemorySize.Word, Register.R2, 4, Register.R1)
                .LoadMap(Register.R1, FramesMap)
                .Call(HelperFunction.MapDeleteElem)
                .Mov64(Register.R0, 0)
                .Exit());
        return code.Assemble().BindMaps(new Dictionary<string, int> { [DepthsMap] = depthsFd, [FramesMap] = framesFd });
    }

    /// <summary>
    /// Whether an activation of this version can be one that only creates a generator, coroutine or async generator:
    /// 3.11+ run RETURN_GENERATOR in a frame of their own, which CPython's profiler (and 3.9's USDT probes) do not
    /// report as a call.
    /// </summary>
    public static bool CreationRunsFrame(CPythonFacts facts, RuntimeLayout layout) => facts.GeneratorCreationRunsFrame && layout.Frame.Owner is not null;

    /// <summary>
    /// Reads the code object of the frame _PyEval_EvalFrameDefault was called with (ctx in <paramref name="ctx"/>)
    /// into <paramref name="codeSlot"/> and pushes it; jumps to <paramref name="skip"/> when there is no code object
    /// or no depth entry. Clobbers R0–R5.
    /// </summary>
    /// <param name="tagCreation">
    /// Push the code object with <see cref="CreationTag"/> set when the activation only creates a generator (see
    /// <see cref="EmitTagCreation"/>), reading co_flags by itself. The slot keeps the tag; its ret pops it tagged.
    /// </param>
    public static void EmitPush(InstructionBuilder code, CPythonFacts facts, RuntimeLayout layout, Register ctx, Register pidTgid, short codeSlot, string skip, bool tagCreation = false)
    {
        EmitReadCode(code, facts, layout, ctx, codeSlot, skip);
        if (tagCreation && CreationRunsFrame(facts, layout))
            EmitTagCreation(code, facts, layout, ctx, EmitReadFlags(code, codeSlot), codeSlot);
        EmitPushCode(code, pidTgid, codeSlot, skip);
    }

    /// <summary>Reads co_flags of the code object in <paramref name="codeSlot"/> into a new u32 slot (0 when the read fails), returned. Clobbers R0–R5.</summary>
    public static short EmitReadFlags(InstructionBuilder code, short codeSlot)
    {
        var flags = code.Stack.Allocate(8, "co_flags");
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, flags, 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, flags)
            .Mov64(Register.R2, 4)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeSlot)
            .Add64(Register.R3, CodeObjectFields.FlagsOffset)
            .Call(HelperFunction.ProbeReadUser);
        return flags;
    }

    /// <summary>
    /// Sets <see cref="CreationTag"/> on the code object in <paramref name="codeSlot"/> when this activation only creates a
    /// generator, coroutine or async generator: its code is generator-like (co_flags, a u32 already read into
    /// <paramref name="flagsSlot"/>) and its frame is not owned by a generator (a resume runs in the generator's own
    /// frame, the creating call in one of the thread's). The frame's owner is read only for generator-like code.
    /// Nothing on versions where creation runs no frame. Clobbers R0–R5.
    /// </summary>
    public static void EmitTagCreation(InstructionBuilder code, CPythonFacts facts, RuntimeLayout layout, Register ctx, short flagsSlot, short codeSlot)
    {
        if (!CreationRunsFrame(facts, layout)) return;
        var owner = code.Stack.Allocate(8, "frame owner");
        var untagged = code.Scope("creation")["not"];
        code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, flagsSlot)
            .And64(Register.R1, GeneratorLikeFlags)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, untagged)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, owner, 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, owner)
            .Mov64(Register.R2, 1);
        PtRegs.Load(code, Register.R3, ctx, FrameRegister(facts));
        code.Add64(Register.R3, layout.Frame.Owner!.Value)
            .Call(HelperFunction.ProbeReadUser)
            .LoadMem(MemorySize.Byte, Register.R1, Register.FramePointer, owner)
            .JumpIf(JumpCondition.Equal, Register.R1, FrameOwnedByGenerator, untagged)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .Or64(Register.R1, CreationTag)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeSlot, Register.R1)
            .Label(untagged);
    }

    /// <summary>Jumps to <paramref name="tagged"/> when the code object in <paramref name="codeSlot"/> carries <see cref="CreationTag"/>. Clobbers R1.</summary>
    public static void EmitSkipCreation(InstructionBuilder code, short codeSlot, string tagged) =>
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .And64(Register.R1, CreationTag)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, tagged);

    /// <summary>
    /// Pushes the code object already in <paramref name="codeSlot"/> (tag and all) as the thread's innermost open
    /// activation; jumps to <paramref name="skip"/> when the thread's depth entry can be neither found nor made. Clobbers R0–R5.
    /// </summary>
    public static void EmitPushCode(InstructionBuilder code, Register pidTgid, short codeSlot, string skip)
    {
        var tid = code.Stack.Allocate(4, "tid");
        // The zero depth a new thread starts from; then the depth pushed at.
        var zeroThenDepth = code.Stack.Allocate(DepthValueSize, "zero depth, then the depth");
        var frameKey = code.Stack.Allocate(8, "(tid, chunk)");
        var labels = code.Scope("push");
        string haveDepth = labels["have_depth"], notDeeper = labels["not_deeper"], haveChunk = labels["have_chunk"];
        code.StoreMem(MemorySize.Word, Register.FramePointer, tid, pidTgid);
        MapLookup.EmitFindOrCreate(code, DepthsMap, tid,
            () => code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, zeroThenDepth, 0)
                .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, zeroThenDepth),
            haveDepth);
        code.Jump(skip)
            .Label(haveDepth)
            // R0 points at the thread's depth: one more activation is open.
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, 0)
            .Add64(Register.R1, 1)
            .StoreMem(MemorySize.Word, Register.R0, 0, Register.R1)
            .LoadMem(MemorySize.Word, Register.R2, Register.R0, DeepestOffset)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R2, Register.R1, notDeeper)
            .StoreMem(MemorySize.Word, Register.R0, DeepestOffset, Register.R1)
            .Label(notDeeper)
            .StoreMem(MemorySize.Word, Register.FramePointer, zeroThenDepth, Register.R1);
        EmitChunkKey(code, pidTgid, frameKey);
        MapLookup.EmitFindOrCreate(code, FramesMap, frameKey,
            () =>
            {
                // The tid slot has done its work: it becomes the zero chunk's key.
                code.StoreImm(MemorySize.Word, Register.FramePointer, tid, 0);
                MapLookup.Emit(code, ZeroChunkMap, tid, skip).Mov64(Register.R3, Register.R0);
            },
            haveChunk);
        code.Jump(skip)
            .Label(haveChunk);
        EmitSlotOf(code, zeroThenDepth);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .StoreMem(MemorySize.DoubleWord, Register.R0, 0, Register.R1);
    }

    /// <summary>R0 (a chunk) += the byte offset of the depth (a u32 in <paramref name="depthSlot"/>) within it. Clobbers R1.</summary>
    internal static void EmitSlotOf(InstructionBuilder code, short depthSlot) =>
        code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, depthSlot)
            .And64(Register.R1, ChunkFrames - 1)
            .Lsh64(Register.R1, 3)
            .Add64(Register.R0, Register.R1);

    /// <summary>Stores the key of the chunk holding the depth in R1 (u32) at <paramref name="frameKey"/>: the tid, then depth / <see cref="ChunkFrames"/>. Clobbers R2.</summary>
    internal static void EmitChunkKey(InstructionBuilder code, Register pidTgid, short frameKey) =>
        code.Mov64(Register.R2, Register.R1)
            .Rsh64(Register.R2, ChunkShift)
            .StoreMem(MemorySize.Word, Register.FramePointer, (short)(frameKey + 4), Register.R2)
            .StoreMem(MemorySize.Word, Register.FramePointer, frameKey, pidTgid);

    /// <summary>
    /// Reads the code object of the frame _PyEval_EvalFrameDefault was called with into <paramref name="codeSlot"/>,
    /// without pushing it (nothing will pop it: no return program); jumps to <paramref name="skip"/> when there is none.
    /// Clobbers R0–R5.
    /// </summary>
    public static void EmitReadCode(InstructionBuilder code, CPythonFacts facts, RuntimeLayout layout, Register ctx, short codeSlot, string skip)
    {
        PtRegs.Load(code, Register.R3, ctx, FrameRegister(facts));
        CodeObjectFields.EmitCodeOfFrame(code, layout, codeSlot, skip);
    }

    // 3.8: (PyFrameObject *f, int throwflag); 3.9+: (PyThreadState *tstate, frame, int throwflag).
    private static int FrameRegister(CPythonFacts facts) => facts.EvalFrameTakesFrameFirst ? PtRegs.Rdi : PtRegs.Rsi;

    /// <summary>
    /// Pops the thread's innermost open activation into <paramref name="codeSlot"/>; jumps to <paramref name="none"/>
    /// when the thread has none (it began before the probes were attached). Clobbers R0–R5.
    /// </summary>
    public static void EmitPop(InstructionBuilder code, Register pidTgid, short codeSlot, string none)
    {
        var tid = code.Stack.Allocate(4, "tid, then the depth");
        var frameKey = code.Stack.Allocate(8, "(tid, chunk)");
        code.StoreMem(MemorySize.Word, Register.FramePointer, tid, pidTgid);
        MapLookup.Emit(code, DepthsMap, tid, none)
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, 0)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, none)
            .StoreMem(MemorySize.Word, Register.FramePointer, tid, Register.R1);
        EmitChunkKey(code, pidTgid, frameKey);
        code.Sub64(Register.R1, 1)
            .StoreMem(MemorySize.Word, Register.R0, 0, Register.R1);
        MapLookup.Emit(code, FramesMap, frameKey, none);
        EmitSlotOf(code, tid);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeSlot, Register.R1);
    }
}

/// <summary>The maps of an <see cref="ActivationStack"/>: depths, frames in chunks, and the zeroed chunk new ones are made from.</summary>
public sealed record ActivationStackMaps(BpfMap Depths, BpfMap Frames, BpfMap ZeroChunk);
