namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// The <c>__init__</c> activations 3.13 runs inline (<see cref="InlineInitSites"/>) on the <see cref="ActivationStack"/>:
/// the allocation's probe names the function from the class and pushes it tagged <see cref="ActivationStack.InlineInitTag"/>;
/// at _PyEval_FrameClearAndPop, which every frame's end goes through, only a tagged top whose frame is ending is popped.
/// The rets of the running activation never see these frames, so the stack stays balanced.
/// </summary>
public static class InlineInitFrames
{
    /// <summary>
    /// Reads the code object of the <c>__init__</c> about to run (the class in rdi: its cached <c>__init__</c>, that
    /// function's func_code) into <paramref name="codeSlot"/>; jumps to <paramref name="skip"/> when a read fails.
    /// Clobbers R0–R5.
    /// </summary>
    public static void EmitReadCode(InstructionBuilder code, InlineInitLayout layout, Register ctx, short codeSlot, string skip)
    {
        PtRegs.Load(code, Register.R3, ctx, PtRegs.Rdi);
        code.Add64(Register.R3, layout.HeapTypeInit);
        EmitReadPointer(code, codeSlot, skip);
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeSlot)
            .Add64(Register.R3, layout.FunctionCode);
        EmitReadPointer(code, codeSlot, skip);
    }

    /// <summary>
    /// Jumps to <paramref name="skip"/> when the code object is a generator's, coroutine's or async generator's (co_flags,
    /// a u32 in <paramref name="flagsSlot"/>): such an <c>__init__</c> only creates one, which is no call, and its frame
    /// ends without _PyEval_FrameClearAndPop (CPython then raises TypeError: __init__ must return None). Clobbers R1.
    /// </summary>
    public static void EmitSkipGeneratorLike(InstructionBuilder code, short flagsSlot, string skip) =>
        code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, flagsSlot)
            .And64(Register.R1, ActivationStack.GeneratorLikeFlags)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, skip);

    /// <summary>Pushes the code object in <paramref name="codeSlot"/> tagged as an inline <c>__init__</c>; the slot keeps it untagged. Clobbers R0–R5.</summary>
    public static void EmitPush(InstructionBuilder code, Register pidTgid, short codeSlot, string skip)
    {
        var tagged = code.Stack.Allocate(8, "tagged code object");
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .Or64(Register.R1, ActivationStack.InlineInitTag)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, tagged, Register.R1);
        ActivationStack.EmitPushCode(code, pidTgid, tagged, skip);
    }

    /// <summary>
    /// At _PyEval_FrameClearAndPop (the ending frame in rsi): when the thread's innermost open activation is an inline
    /// <c>__init__</c> and this is its frame — the same code object, and the frame under it runs the _Py_InitCleanup shim
    /// (<see cref="InlineInitLayout.ShimCodeFlag"/>) — pops it into <paramref name="codeSlot"/> (untagged); else jumps to
    /// <paramref name="none"/>. Every other frame's end costs the two lookups of the top. Clobbers R0–R5.
    /// </summary>
    public static void EmitPopEnded(InstructionBuilder code, RuntimeLayout layout, Register ctx, Register pidTgid, short codeSlot, string none)
    {
        var tid = code.Stack.Allocate(4, "tid");
        var frameKey = code.Stack.Allocate(8, "(tid, chunk)");
        var frame = code.Stack.Allocate(8, "the depth, then the ending frame");
        var other = code.Stack.Allocate(8, "code object read");
        code.StoreMem(MemorySize.Word, Register.FramePointer, tid, pidTgid);
        MapLookup.Emit(code, ActivationStack.DepthsMap, tid, none)
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, 0)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, none)
            .StoreMem(MemorySize.Word, Register.FramePointer, frame, Register.R1);
        ActivationStack.EmitChunkKey(code, pidTgid, frameKey);
        MapLookup.Emit(code, ActivationStack.FramesMap, frameKey, none);
        ActivationStack.EmitSlotOf(code, frame);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .Mov64(Register.R2, Register.R1)
            .And64(Register.R2, ActivationStack.InlineInitTag)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, none)
            .And64(Register.R1, ~ActivationStack.InlineInitTag)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeSlot, Register.R1);

        // The ending frame runs that code object…
        PtRegs.Load(code, Register.R3, ctx, PtRegs.Rsi);
        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, frame, Register.R3);
        CodeObjectFields.EmitCodeOfFrame(code, layout, other, none);
        code.LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, codeSlot)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, none)
            // …and its caller is the shim.
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, frame)
            .Add64(Register.R3, layout.Frame.Previous);
        EmitReadPointer(code, other, none);
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, other);
        CodeObjectFields.EmitCodeOfFrame(code, layout, other, none);
        var flags = ActivationStack.EmitReadFlags(code, other);
        code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, flags)
            .And64(Register.R1, InlineInitLayout.ShimCodeFlag)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, none);

        MapLookup.Emit(code, ActivationStack.DepthsMap, tid, none)
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, 0)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, none)
            .Sub64(Register.R1, 1)
            .StoreMem(MemorySize.Word, Register.R0, 0, Register.R1);
    }

    /// <summary><c>*slot = *(u64 *)R3</c> from the process; jumps to <paramref name="skip"/> when the read fails or gives NULL. Clobbers R0–R5.</summary>
    private static void EmitReadPointer(InstructionBuilder code, short slot, string skip) =>
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, slot)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, skip)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, skip);
}
