using Pyprobe.Python.EvalFrame;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Analysis;

/// <summary>
/// How a USDT function__entry finds the code object of the frame it announces, so a call is keyed by that code
/// object's first line instead of the probe's line (where the activation starts: a generator's resume line on
/// 3.8–3.10, 0 for module code on 3.11). At the probe the thread holds the GIL, so the GIL holder
/// (<c>_PyRuntime.gilstate.tstate_current</c>, 3.8–3.11) is its thread state, and the thread state's current frame
/// is the frame being entered: 3.8–3.10 set <c>tstate->frame = f</c> before the probe, 3.11 fires it at the
/// frame's RESUME with <c>cframe->current_frame == frame</c>. Where the code object has a qualified name (3.11) the
/// row is keyed by it, as on every other source.
/// </summary>
/// <remarks>
/// On 3.15 the thread state is only in the thread-local <c>_Py_tss_tstate</c>: the program adds its fs-relative
/// offset to the thread's fsbase; there the probe fires at <c>start_frame</c>, where <c>tstate->current_frame</c> is
/// the frame being started. A static executable reaches it local-exec (<c>mov %fs:OFFSET</c>): the offset is in the
/// binary's code, the same in every process, so it is a constant of the program and processes found later (--all,
/// a command's descendants) are keyed like the others. A shared libpython's offset is known only once the loader
/// placed it: the program looks it up per process (<see cref="TlsOffsetsMap"/>, filled when attaching).
/// </remarks>
/// <param name="Facts">What the interpreter's version does (its str layout).</param>
/// <param name="Layout">The interpreter's layouts (thread state → frame → code object).</param>
/// <param name="GilHolderAddress">Link-time address of <c>_PyRuntime.gilstate.tstate_current</c> in the probe's binary (3.8–3.11), or null.</param>
/// <param name="TaskFsBase">Offset of <c>task_struct.thread.fsbase</c> in this kernel, for the thread-local form.</param>
/// <param name="FixedTlsOffset">The fs-relative offset of <c>_Py_tss_tstate</c> where the binary fixes it (local-exec), else null.</param>
public sealed record EntryFrameCode(CPythonFacts Facts, RuntimeLayout Layout, ulong? GilHolderAddress, int TaskFsBase = 0, long? FixedTlsOffset = null)
{
    /// <summary>Map name in the generated code: hash u32 pid → i64 fs-relative offset of _Py_tss_tstate.</summary>
    public const string TlsOffsetsMap = "tls_offsets";

    /// <summary>The thread state is the thread-local one (3.15), not the GIL holder.</summary>
    public bool UsesThreadLocal => GilHolderAddress is null;

    /// <summary>The thread-local form with a per-process offset: the program needs <see cref="TlsOffsetsMap"/>.</summary>
    public bool NeedsTlsOffsets => GilHolderAddress is null && FixedTlsOffset is null;

    /// <summary>
    /// For a target whose probes are in the binary that defines <c>_PyRuntime</c>: through the GIL holder (3.8–3.11),
    /// or the thread-local thread state (3.12+, given <paramref name="taskFsBase"/>); null otherwise.
    /// </summary>
    public static EntryFrameCode? For(CPythonBinary binary, Func<int> taskFsBase)
    {
        if (binary.Facts.RecordsGilHolder && binary.Layout.Runtime.GilHolder is int holder)
            return new EntryFrameCode(binary.Facts, binary.Layout, binary.Symbols.PyRuntime + (ulong)holder);
        if (binary.Facts.HasThreadLocalThreadState && binary.ThreadStateTls is not null && binary.Layout.ThreadState.CFrameCurrentFrame is null)
            return new EntryFrameCode(binary.Facts, binary.Layout, null, taskFsBase(), (binary.ThreadStateTls as ThreadStateTls.FsRelative)?.Offset);
        return null;
    }

    /// <summary>
    /// Replaces <paramref name="lineSlot"/> with the entered frame's co_firstlineno and, where there is one,
    /// <paramref name="nameSlot"/> with its co_qualname's bytes (ctx in <paramref name="ctx"/>, the probe's link-time
    /// address <paramref name="siteAddress"/> to find the GIL holder ip-relatively); leaves both as the probe gave
    /// them when the frame cannot be read. Clobbers R0–R5.
    /// </summary>
    /// <param name="foundSlot">If given, a u64 slot set to 1 when both were replaced (left as it was otherwise).</param>
    /// <param name="dropCreation">
    /// If given (3.15 entries), where to jump when the frame is a generator's or coroutine's being created rather than
    /// resumed: 3.15 fires function__entry at <c>start_frame</c> for it, and it ends at <c>RETURN_GENERATOR</c> without
    /// a function__return. It is recognised as a fresh frame (instr_ptr at the first instruction; a resumed frame is
    /// past its <c>RETURN_GENERATOR</c>) of code whose co_flags say generator, coroutine or async generator.
    /// </param>
    public void Emit(InstructionBuilder code, Register ctx, ulong siteAddress, short lineSlot, short nameSlot, short? foundSlot = null, string? dropCreation = null)
    {
        var word = code.Stack.Allocate(8, "thread state / frame");
        var codeObject = code.Stack.Allocate(8, "entered code object");
        var keep = code.Scope("entry_code")["keep_line"];
        if (GilHolderAddress is ulong holder)
        {
            var distance = unchecked((long)(holder - siteAddress));
            PtRegs.LoadIp(code, Register.R3, ctx);
            if (distance is >= int.MinValue and <= int.MaxValue) code.Add64(Register.R3, (int)distance);
            else code.LoadImm64(Register.R4, distance).Add64(Register.R3, Register.R4);
        }
        else
        {
            // fsbase of this thread + the offset of _Py_tss_tstate: the binary's, or the process's.
            if (FixedTlsOffset is long fixedOffset)
            {
                code.LoadImm64(Register.R1, fixedOffset)
                    .StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeObject, Register.R1);
            }
            else
            {
                var pid = code.Stack.Allocate(4, "pid");
                code.Call(HelperFunction.GetCurrentPidTgid)
                    .Rsh64(Register.R0, 32)
                    .StoreMem(MemorySize.Word, Register.FramePointer, pid, Register.R0);
                MapLookup.Emit(code, TlsOffsetsMap, pid, keep)
                    .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
                    .StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeObject, Register.R1);
            }
            code.Call(HelperFunction.GetCurrentTask)
                .Mov64(Register.R3, Register.R0).Add64(Register.R3, TaskFsBase)
                .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, word)
                .Mov64(Register.R2, 8)
                .Call(HelperFunction.ProbeReadKernel)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, keep)
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, word)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeObject)
                .Add64(Register.R3, Register.R1);
        }
        EmitRead(code, word, keep);
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, word)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, keep)
            .Add64(Register.R3, Layout.ThreadState.TopFrame);
        EmitRead(code, word, keep);
        if (Layout.ThreadState.CFrameCurrentFrame is int currentFrame)
        {
            // 3.11: tstate->cframe, then its current_frame.
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, word)
                .JumpIf(JumpCondition.Equal, Register.R3, 0, keep)
                .Add64(Register.R3, currentFrame);
            EmitRead(code, word, keep);
        }
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, word)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, keep);
        if (Layout.Frame.PositionKind is InstructionPosition.LastiBytes or InstructionPosition.LastiCodeUnits)
        {
            // 3.8–3.10: a frame that has not run yet (f_lasti −1) is announced at its code's first line already
            // (PyCode_Addr2Line gives co_firstlineno for it): its code object need not be read. Only a resumed
            // generator's entry says where it resumes.
            var lasti = code.Stack.Allocate(8, "f_lasti");
            var started = code.Scope("fresh_frame")["started"];
            code.Add64(Register.R3, Layout.Frame.Position);
            EmitReadInt(code, lasti, keep);
            code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, lasti)
                .JumpIf32(JumpCondition.NotEqual, Register.R1, -1, started);
            if (foundSlot is short fresh) code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, fresh, 1);
            code.Jump(keep)
                .Label(started)
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, word);
        }
        CodeObjectFields.EmitCodeOfFrame(code, Layout, codeObject, keep);
        if (dropCreation is not null) EmitCreationCheck(code, word, codeObject, dropCreation);
        if (Layout.Code.Qualname is not null)
        {
            // The filename is the probe's already (same str object): read into a slot of its own and dropped. A qualified
            // name with no UTF-8 copy (one that is not ASCII, which nothing asked to encode) leaves the probe's co_name.
            var qualname = code.Stack.Allocate(8, "qualified name");
            CodeObjectFields.Emit(code, Facts, Layout, codeObject, new CodeObjectSlots(word, qualname, lineSlot));
            var unnamed = code.Scope("qualname")["none"];
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, qualname)
                .JumpIf(JumpCondition.Equal, Register.R1, 0, unnamed)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, nameSlot, Register.R1)
                .Label(unnamed);
            if (foundSlot is short found) code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, found, 1);
            code.Label(keep);
            return;
        }
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeObject)
            .Add64(Register.R3, Layout.Code.FirstLineNo);
        EmitReadInt(code, word, keep);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, word)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, lineSlot, Register.R1);
        if (foundSlot is short set) code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, set, 1);
        code.Label(keep);
    }

    /// <summary>co_flags of 3.11+ code objects: after PyObject_VAR_HEAD and co_consts, co_names, co_exceptiontable.</summary>
    private const int CodeFlagsOffset = 48;

    /// <summary>CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR: code whose call creates an object instead of running.</summary>
    private const int CreatesObjectFlags = 0x20 | 0x80 | 0x200;

    /// <summary>
    /// Jumps to <paramref name="creation"/> when the frame (address in <paramref name="frameSlot"/>) is fresh and its
    /// code (<paramref name="codeObject"/>) makes a generator or coroutine; falls through otherwise, also when unreadable.
    /// </summary>
    private void EmitCreationCheck(InstructionBuilder code, short frameSlot, short codeObject, string creation)
    {
        if (Layout.Frame.PositionKind != InstructionPosition.InstructionPointer || Layout.Code.CodeAdaptive is not int adaptive)
            throw new UnsupportedRuntimeException("telling a generator's creation from its resume needs instr_ptr and co_code_adaptive (3.13+)");
        var value = code.Stack.Allocate(8, "instr_ptr / co_flags");
        var resumed = code.Scope("creation")["not_created"];
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, frameSlot)
            .Add64(Register.R3, Layout.Frame.Position);
        EmitRead(code, value, resumed);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeObject)
            .Add64(Register.R1, adaptive)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, value)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, resumed)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeObject)
            .Add64(Register.R3, CodeFlagsOffset);
        EmitReadInt(code, value, resumed);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, value)
            .And64(Register.R1, CreatesObjectFlags)
            .JumpIf(JumpCondition.NotEqual, Register.R1, 0, creation)
            .Label(resumed);
    }

    /// <summary>
    /// For flow: code for the USDT event program that keys a function__entry or function__return record by the code
    /// object of its frame — the line value becomes co_firstlineno (the name co_qualname where there is one) and
    /// <see cref="UsdtEventLayout.FirstLineBit"/> is set; a record whose frame cannot be read keeps the probe's values.
    /// On 3.15 an entry that creates a generator or coroutine (it never returns) is not sent.
    /// At function__return the thread state's frame is still the returning one (3.9: before <c>tstate->frame =
    /// f->f_back</c>; 3.11 and 3.15: before the frame is popped).
    /// </summary>
    /// <param name="siteAddress">The probe's link-time address.</param>
    /// <param name="isEntry">The record is a function__entry's.</param>
    public RecordRewrite RecordRewrite(ulong siteAddress, bool isEntry) => (code, ctx, scratch, drop) =>
    {
        var line = code.Stack.Allocate(8, "line");
        var name = code.Stack.Allocate(8, "name");
        var found = code.Stack.Allocate(8, "keyed");
        var done = code.Scope("keyed_by_code")["unkeyed"];
        short Field(int argument) => EventProgramParts.Field(UsdtEventLayout.ValueOffset(argument));
        code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, Field(2))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, line, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, scratch, Field(1))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, name, Register.R1)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, found, 0);
        Emit(code, ctx, siteAddress, line, name, found, isEntry && UsesThreadLocal ? drop : null);
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, found)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, done)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, line)
            .StoreMem(MemorySize.DoubleWord, scratch, Field(2), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, name)
            .StoreMem(MemorySize.DoubleWord, scratch, Field(1), Register.R1)
            .LoadMem(MemorySize.Word, Register.R1, scratch, EventProgramParts.Field(UsdtEventLayout.TruncatedOffset))
            .Or64(Register.R1, unchecked((int)(1u << UsdtEventLayout.FirstLineBit)))
            .StoreMem(MemorySize.Word, scratch, EventProgramParts.Field(UsdtEventLayout.TruncatedOffset), Register.R1)
            .Label(done);
    };

    /// <summary>The 4-byte int at R3 into the 8-byte <paramref name="slot"/> (its upper half zeroed), or a jump to <paramref name="failed"/>.</summary>
    private static void EmitReadInt(InstructionBuilder code, short slot, string failed) =>
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, slot, 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, slot)
            .Mov64(Register.R2, 4)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, failed);

    /// <summary>8 bytes at R3 into <paramref name="slot"/>, or a jump to <paramref name="failed"/>.</summary>
    private static void EmitRead(InstructionBuilder code, short slot, string failed) =>
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, slot)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, failed);
}
