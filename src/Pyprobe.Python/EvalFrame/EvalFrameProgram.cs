using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// Which program: entry (push and send), send only (entries without returns: nothing will pop, so nothing is pushed),
/// push only (returns alone were asked for), or return (pop and send).
/// </summary>
public enum EvalFrameProgramKind { Entry, SendOnly, PushOnly, Return }

/// <summary>The maps the eval-frame programs use.</summary>
/// <param name="RingFd">The session's ring buffer.</param>
/// <param name="ScratchFd">The session's per-CPU scratch (as the USDT event program's: counters, then the record).</param>
/// <param name="DepthsFd">LRU hash u32 tid → u64 activations open on that thread.</param>
/// <param name="FramesFd">LRU hash (u32 tid, u32 depth) → u64 code object of that open activation.</param>
/// <param name="TargetsFd">Hash of allowed tgids, or null for every process.</param>
/// <param name="Tids">Threads to keep, or null for all.</param>
/// <param name="WakeupThreshold">Ring fill above which a record wakes the reader.</param>
/// <param name="Memo">
/// The <see cref="CodeObjectMemo"/>'s fd, made on first call (only a layout with co_version uses it: 3.8–3.11 and
/// free-threaded sessions never pay for its preallocated elements), or null for none.
/// </param>
public sealed record EvalFrameMaps(int RingFd, int ScratchFd, int DepthsFd, int FramesFd, int? TargetsFd, IReadOnlyList<int>? Tids, int WakeupThreshold, Func<int>? Memo = null);

/// <summary>
/// Generates the programs on _PyEval_EvalFrameDefault: at its entry (one Python activation begins: a call, a
/// generator resume or a throw()) and at each of its ret instructions (it ends). They write records in the layout
/// of the USDT function__entry/function__return events (filename, function name, first line) with the parts the
/// USDT event program uses (filter, header, string copy, ring output), so everything that reads those works unchanged.
/// The name is co_qualname where the version has one, else co_name.
/// </summary>
/// <remarks>
/// Rets learn their code object from the <see cref="ActivationStack"/>; a ret on a thread with no open activation
/// (one that began before pyprobe attached) is dropped, never guessed. On 3.11+ the activation that only creates a
/// generator, coroutine or async generator (RETURN_GENERATOR in a frame of its own) is neither an entry nor a return,
/// as for sys.setprofile and 3.9's USDT probes.
/// </remarks>
public static class EvalFrameProgram
{
    private const string Exit = "out";
    private static readonly Register Ctx = Register.R6;
    private static readonly Register PidTgid = Register.R7;
    private static readonly Register Scratch = Register.R8;
    private static readonly Register StringBytes = Register.R9;

    /// <summary>The layout of the records: that of function__entry/function__return (filename, funcname, lineno).</summary>
    public static UsdtEventLayout Layout { get; } = new(3, [0, 1]);

    /// <summary>Generates the program and binds it to the session's maps.</summary>
    public static AssembledProgram Generate(EvalFrameProgramKind kind, CPythonFacts facts, RuntimeLayout layout, EvalFrameMaps maps)
    {
        var fds = EventProgramParts.Bindings(maps.RingFd, maps.ScratchFd, maps.TargetsFd);
        fds[ActivationStack.DepthsMap] = maps.DepthsFd;
        fds[ActivationStack.FramesMap] = maps.FramesFd;
        var memo = false;
        if (maps.Memo is { } memoFd && CodeObjectMemo.Serves(layout.Code))
        {
            fds[CodeObjectMemo.MapName] = memoFd();
            memo = true;
        }
        return Build(kind, facts, layout, new UsdtEventOptions(maps.TargetsFd is not null, maps.Tids, maps.WakeupThreshold), memo).BindMaps(fds);
    }

    /// <summary>Generates the program with its maps by name, to bind later.</summary>
    /// <param name="memo">Name code objects through the <see cref="CodeObjectMemo"/> (<see cref="CodeObjectMemo.MapName"/>; the layout must have co_version).</param>
    public static AssembledProgram Build(EvalFrameProgramKind kind, CPythonFacts facts, RuntimeLayout layout, UsdtEventOptions options, bool memo = false)
    {
        if (memo && !CodeObjectMemo.Serves(layout.Code)) throw new ArgumentException("the memo needs co_version and co_qualname", nameof(memo));
        var code = new InstructionBuilder();
        var codeSlot = code.Stack.Allocate(8, "code object");
        var creation = ActivationStack.CreationRunsFrame(facts, layout);
        if (kind == EvalFrameProgramKind.PushOnly)
        {
            // Nothing is sent, so no hit is counted: only the filter and the push (creations tagged, for the ret to drop).
            code.Mov64(Ctx, Register.R1)
                .Call(HelperFunction.GetCurrentPidTgid)
                .Mov64(PidTgid, Register.R0);
            PidFilter.Emit(code, PidTgid, options.FilterTargets ? EventProgramParts.TargetsMap : null, options.Tids, Exit);
            ActivationStack.EmitPush(code, facts, layout, Ctx, PidTgid, codeSlot, Exit, tagCreation: true);
        }
        else if (kind == EvalFrameProgramKind.Return)
        {
            EventProgramParts.EmitStart(code, Ctx, PidTgid, Scratch, options.FilterTargets, options.Tids, Exit);
            ActivationStack.EmitPop(code, PidTgid, codeSlot, Exit);
            // The ret of an activation that only created a generator: its entry was not sent either.
            if (creation) ActivationStack.EmitSkipCreation(code, codeSlot, Exit);
            EmitRecord(code, facts, CodeObjectFields.EmitReadSpan(code, layout, codeSlot, withFlags: false, withVersion: memo), codeSlot, memo, options.WakeupThreshold);
        }
        else
        {
            EventProgramParts.EmitStart(code, Ctx, PidTgid, Scratch, options.FilterTargets, options.Tids, Exit);
            ActivationStack.EmitReadCode(code, facts, layout, Ctx, codeSlot, Exit);
            // co_flags comes with the span the record needs (one read): creating a generator is not an activation
            // CPython's profiler or 3.9's probes report, so it sends nothing; with returns traced it is still pushed,
            // tagged, so that its ret is dropped too.
            var span = CodeObjectFields.EmitReadSpan(code, layout, codeSlot, withFlags: creation, withVersion: memo);
            if (creation) ActivationStack.EmitTagCreation(code, facts, layout, Ctx, span.Flags!.Value, codeSlot);
            if (kind == EvalFrameProgramKind.Entry) ActivationStack.EmitPushCode(code, PidTgid, codeSlot, Exit);
            if (creation) ActivationStack.EmitSkipCreation(code, codeSlot, Exit);
            EmitRecord(code, facts, span, codeSlot, memo, options.WakeupThreshold);
        }
        code.Label(Exit)
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>Builds and sends the record for the code object whose span is <paramref name="span"/>.</summary>
    private static void EmitRecord(InstructionBuilder code, CPythonFacts facts, CodeObjectSpan span, short codeSlot, bool memo, int wakeupThreshold)
    {
        EventProgramParts.EmitHeader(code, Ctx, PidTgid, Scratch);
        code.StoreImm(MemorySize.Word, Scratch, Field(UsdtEventLayout.TruncatedOffset), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(0)), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(1)), 0);
        if (memo)
        {
            EmitMemoRecord(code, facts, span, codeSlot, wakeupThreshold);
            return;
        }

        var fields = new CodeObjectSlots(code.Stack.Allocate(8, "filename"), code.Stack.Allocate(8, "name"), code.Stack.Allocate(8, "first line"));
        CodeObjectFields.EmitFields(code, facts, span, fields);
        short[] values = [fields.Filename, fields.Name, fields.FirstLine];
        for (var i = 0; i < values.Length; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, values[i])
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(i)), Register.R1);

        EmitStringCopies(code);
        EventProgramParts.EmitSend(code, Scratch, StringBytes, Layout.StringsOffset, wakeupThreshold);
    }

    /// <summary>
    /// The record through the <see cref="CodeObjectMemo"/>: a hit sends both names interned (address and hash, no
    /// bytes); a miss reads each str's header, copies the bytes as <see cref="EmitRecord"/> does with the str's hash (or
    /// <see cref="CodeObjectMemo.SyntheticFingerprint"/>) as fingerprint, so user space learns them, and remembers the
    /// code object when both strs qualify.
    /// </summary>
    private static void EmitMemoRecord(InstructionBuilder code, CPythonFacts facts, CodeObjectSpan span, short codeSlot, int wakeupThreshold)
    {
        var c = span.Layout;
        var labels = code.Scope("memo");
        string miss = labels["miss"], send = labels["send"];
        var objects = new StrObjectSlots(code.Stack.Allocate(8, "co_filename"), code.Stack.Allocate(8, "co_qualname"));
        short[] objectSlots = [objects.Filename, objects.Name];
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, span.At(c.Filename))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, objects.Filename, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, span.At(c.Qualname!.Value))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, objects.Name, Register.R1)
            // int co_firstlineno, zero-extended.
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, span.At(c.FirstLineNo))
            .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(2)), Register.R1);

        var key = CodeObjectMemo.EmitKey(code, PidTgid, codeSlot);
        CodeObjectMemo.EmitFind(code, key, span, objects, miss);
        // Hit (R0 = the value): both strs are compact ASCII, their bytes right after the header.
        for (var j = 0; j < 2; j++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, CodeObjectMemo.HashAt(j))
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(j)), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, objectSlots[j])
                .Add64(Register.R1, facts.Str.AsciiData)
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(j)), Register.R1)
                .StoreImm(MemorySize.HalfWord, Scratch, Field(Layout.LengthOffset(j)), UsdtEventLayout.InternedLength);
        code.Mov64(StringBytes, 0)
            .Jump(send)
            .Label(miss);

        var data = code.Stack.Allocate(8, "str data");
        short[] headers = [code.Stack.Allocate(CodeObjectFields.StrHeaderSize, "filename header"), code.Stack.Allocate(CodeObjectFields.StrHeaderSize, "name header")];
        for (var j = 0; j < 2; j++)
        {
            var fingerprint = code.Scope("fingerprint");
            string noFingerprint = fingerprint["none"], synthetic = fingerprint["synthetic"], store = fingerprint["store"];
            CodeObjectFields.EmitStringHeader(code, facts.Str, objectSlots[j], headers[j], data);
            var (length, hash, state) = ((short)headers[j], (short)(headers[j] + facts.Str.Hash - facts.Str.Length), (short)(headers[j] + facts.Str.State - facts.Str.Length));
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, data)
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(j)), Register.R1)
                // Only a compact ASCII str short enough to be copied whole gets a fingerprint: its hash once computed,
                // else one made of co_version (see CodeObjectMemo.SyntheticFingerprint).
                .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, state)
                .And64(Register.R1, (int)StrLayout.CompactAsciiBits)
                .JumpIf(JumpCondition.NotEqual, Register.R1, (int)StrLayout.CompactAsciiBits, noFingerprint)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, length)
                .JumpIf(JumpCondition.Greater, Register.R1, UsdtEventLayout.MaxStringLength, noFingerprint)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, hash)
                .JumpIf(JumpCondition.Equal, Register.R1, -1, synthetic) // never computed
                .JumpIf(JumpCondition.NotEqual, Register.R1, 0, store)   // 0 means "no fingerprint" in the record
                .Label(synthetic);
            CodeObjectMemo.EmitSyntheticFingerprint(code, span, j, noFingerprint);
            code.Label(store)
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(j)), Register.R1)
                .Label(noFingerprint);
        }

        EmitStringCopies(code);

        // A fingerprint only for bytes copied whole (a failed or short copy must not be what user space remembers);
        // the memo only with both.
        for (var j = 0; j < 2; j++)
        {
            var copied = code.Scope("copied");
            string whole = copied["whole"], cut = copied["cut"];
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Scratch, Field(Layout.FingerprintOffset(j)))
                .JumpIf(JumpCondition.Equal, Register.R1, 0, whole)
                .LoadMem(MemorySize.HalfWord, Register.R1, Scratch, Field(Layout.LengthOffset(j)))
                .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, headers[j])
                .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, cut)
                .LoadMem(MemorySize.Word, Register.R1, Scratch, Field(UsdtEventLayout.TruncatedOffset))
                .And64(Register.R1, 1 << j)
                .JumpIf(JumpCondition.Equal, Register.R1, 0, whole)
                .Label(cut)
                .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(j)), 0)
                .Label(whole);
        }
        for (var j = 0; j < 2; j++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Scratch, Field(Layout.FingerprintOffset(j)))
                .JumpIf(JumpCondition.Equal, Register.R1, 0, send);
        CodeObjectMemo.EmitRemember(code, key, span, objects, Scratch, [Field(Layout.FingerprintOffset(0)), Field(Layout.FingerprintOffset(1))]);
        code.Label(send);
        EventProgramParts.EmitSend(code, Scratch, StringBytes, Layout.StringsOffset, wakeupThreshold);
    }

    /// <summary>Copies both strings whose data pointers are in the record, whole up to MaxStringLength bytes each (R9 = bytes copied).</summary>
    private static void EmitStringCopies(InstructionBuilder code)
    {
        code.Mov64(StringBytes, 0);
        for (var j = 0; j < Layout.StringArguments.Count; j++)
        {
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Scratch, Field(UsdtEventLayout.ValueOffset(Layout.StringArguments[j])));
            UserStringCopy.Emit(code, Scratch, EventProgramParts.RecordOffset + Layout.StringsOffset, StringBytes,
                keep: UsdtEventLayout.MaxStringLength, readSize: UsdtEventLayout.MaxStringLength + 2,
                new StringFields(Field(Layout.LengthOffset(j)), MemorySize.HalfWord, Field(UsdtEventLayout.TruncatedOffset), j));
        }
    }

    private static short Field(int recordOffset) => EventProgramParts.Field(recordOffset);
}
