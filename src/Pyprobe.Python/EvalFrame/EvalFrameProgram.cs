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
/// <param name="DepthsFd">The <see cref="ActivationStack"/>'s depths: u32 tid → activations open on that thread.</param>
/// <param name="FramesFd">The <see cref="ActivationStack"/>'s frames: (u32 tid, u32 chunk) → the code objects of the open activations.</param>
/// <param name="TargetsFd">Hash of allowed tgids, or null for every process.</param>
/// <param name="Tids">Threads to keep, or null for all.</param>
/// <param name="WakeupThreshold">Ring fill above which a record wakes the reader.</param>
/// <param name="Memo">The session's <see cref="CodeObjectMemoMaps"/>, made on first call (only binaries whose code objects' deaths can be probed use it), or null for none.</param>
/// <param name="Tgids">The target's processes, compared as constants in place of the <paramref name="TargetsFd"/> lookup, or null.</param>
/// <param name="Queues">The queue per CPU records go to (the ring then only wakes the reader), or null: the ring.</param>
/// <param name="ZeroChunkFd">The <see cref="ActivationStack"/>'s zeroed chunk (needed by programs that push).</param>
public sealed record EvalFrameMaps(int RingFd, int ScratchFd, int DepthsFd, int FramesFd, int? TargetsFd, IReadOnlyList<int>? Tids, int WakeupThreshold, Func<CodeObjectMemoMaps>? Memo = null,
    IReadOnlyList<int>? Tgids = null, CpuQueueMap? Queues = null, int ZeroChunkFd = -1);

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
    /// <param name="memo">Name code objects through the session's <see cref="CodeObjectMemo"/> (<see cref="EvalFrameMaps.Memo"/>): only where code objects' deaths are probed too (<see cref="CodeDeallocSite"/>).</param>
    /// <param name="inlineInit">The program for 3.13's inline <c>__init__</c> (<see cref="InlineInitSites"/>): an entry at the allocation, a return at _PyEval_FrameClearAndPop.</param>
    public static AssembledProgram Generate(EvalFrameProgramKind kind, CPythonFacts facts, RuntimeLayout layout, EvalFrameMaps maps, bool memo = false, uint? probeId = null, bool inlineInit = false)
    {
        var fds = EventProgramParts.Bindings(maps.RingFd, maps.ScratchFd, maps.TargetsFd, maps.Queues);
        fds[ActivationStack.DepthsMap] = maps.DepthsFd;
        fds[ActivationStack.FramesMap] = maps.FramesFd;
        fds[ActivationStack.ZeroChunkMap] = maps.ZeroChunkFd;
        memo &= maps.Memo is not null && kind != EvalFrameProgramKind.PushOnly;
        if (memo)
        {
            var memoMaps = maps.Memo!();
            fds[CodeObjectMemo.MapName] = memoMaps.MemoFd;
            fds[CodeObjectMemo.EpochsMap] = memoMaps.EpochsFd;
        }
        return Build(kind, facts, layout, new UsdtEventOptions(maps.TargetsFd is not null && maps.Tgids is null, maps.Tids, maps.WakeupThreshold, Tgids: maps.Tgids, Queues: maps.Queues?.Layout), memo, probeId, inlineInit).BindMaps(fds);
    }

    /// <summary>Generates the program with its maps by name, to bind later.</summary>
    /// <param name="memo">Name code objects through the <see cref="CodeObjectMemo"/> (<see cref="CodeObjectMemo.MapName"/>, <see cref="CodeObjectMemo.EpochsMap"/>).</param>
    /// <param name="probeId">The probe id the records carry, as a constant; null: the attach cookie (a helper call per event).</param>
    /// <param name="inlineInit">As for <see cref="Generate"/>.</param>
    public static AssembledProgram Build(EvalFrameProgramKind kind, CPythonFacts facts, RuntimeLayout layout, UsdtEventOptions options, bool memo = false, uint? probeId = null, bool inlineInit = false)
    {
        var code = new InstructionBuilder();
        void RecordStart() => EventProgramParts.EmitHeader(code, Ctx, PidTgid, Scratch, probeId);
        var codeSlot = code.Stack.Allocate(8, "code object");
        var creation = ActivationStack.CreationRunsFrame(facts, layout);
        var init = inlineInit ? facts.InlineInit ?? throw new ArgumentException($"CPython {facts.Version} runs no __init__ inline", nameof(inlineInit)) : null;
        if (init is not null && kind == EvalFrameProgramKind.PushOnly)
        {
            code.Mov64(Ctx, Register.R1)
                .Call(HelperFunction.GetCurrentPidTgid)
                .Mov64(PidTgid, Register.R0);
            PidFilter.Emit(code, PidTgid, options.FilterTargets ? EventProgramParts.TargetsMap : null, options.Tids, Exit, options.Tgids);
            InlineInitFrames.EmitReadCode(code, init, Ctx, codeSlot, Exit);
            InlineInitFrames.EmitSkipGeneratorLike(code, ActivationStack.EmitReadFlags(code, codeSlot), Exit);
            InlineInitFrames.EmitPush(code, PidTgid, codeSlot, Exit);
        }
        else if (kind == EvalFrameProgramKind.PushOnly)
        {
            // Nothing is sent, so no hit is counted: only the filter and the push (creations tagged, for the ret to drop).
            code.Mov64(Ctx, Register.R1)
                .Call(HelperFunction.GetCurrentPidTgid)
                .Mov64(PidTgid, Register.R0);
            PidFilter.Emit(code, PidTgid, options.FilterTargets ? EventProgramParts.TargetsMap : null, options.Tids, Exit, options.Tgids);
            ActivationStack.EmitPush(code, facts, layout, Ctx, PidTgid, codeSlot, Exit, tagCreation: true);
        }
        else if (kind == EvalFrameProgramKind.Return)
        {
            EventProgramParts.EmitStart(code, Ctx, PidTgid, Scratch, options.FilterTargets, options.Tids, Exit, tgids: options.Tgids);
            if (init is not null)
                InlineInitFrames.EmitPopEnded(code, layout, Ctx, PidTgid, codeSlot, Exit);
            else
            {
                ActivationStack.EmitPop(code, PidTgid, codeSlot, Exit);
                // The ret of an activation that only created a generator: its entry was not sent either.
                if (creation) ActivationStack.EmitSkipCreation(code, codeSlot, Exit);
            }
            if (memo)
            {
                // A ret never remembers: its code object may have been freed with the frame already.
                var miss = code.Scope("memo")["miss"];
                var found = CodeObjectMemo.EmitFind(code, PidTgid, codeSlot, miss, out _);
                EmitRememberedRecord(code, RecordStart, facts, found, options);
                code.Jump(Exit)
                    .Label(miss);
            }
            EmitRecord(code, RecordStart, facts, CodeObjectFields.EmitReadSpan(code, layout, codeSlot, withFlags: false), options);
        }
        else
        {
            EventProgramParts.EmitStart(code, Ctx, PidTgid, Scratch, options.FilterTargets, options.Tids, Exit, tgids: options.Tgids);
            if (init is not null) InlineInitFrames.EmitReadCode(code, init, Ctx, codeSlot, Exit);
            else ActivationStack.EmitReadCode(code, facts, layout, Ctx, codeSlot, Exit);
            // Creating a generator is not an activation CPython's profiler or 3.9's probes report, so it sends nothing;
            // with returns traced it is still pushed, tagged, so that its ret is dropped too. The code object's co_flags
            // come from the memo or with the span the record needs (one read). An inline __init__ is pushed tagged as
            // such, and one that only creates a generator not at all (its frame ends without the frame clear).
            void Activation(short? flags, Action record)
            {
                if (init is not null)
                {
                    InlineInitFrames.EmitSkipGeneratorLike(code, flags!.Value, Exit);
                    if (kind == EvalFrameProgramKind.Entry) InlineInitFrames.EmitPush(code, PidTgid, codeSlot, Exit);
                    record();
                    return;
                }
                if (creation) ActivationStack.EmitTagCreation(code, facts, layout, Ctx, flags!.Value, codeSlot);
                if (kind == EvalFrameProgramKind.Entry) ActivationStack.EmitPushCode(code, PidTgid, codeSlot, Exit);
                if (creation) ActivationStack.EmitSkipCreation(code, codeSlot, Exit);
                record();
            }
            short memoIndex = 0;
            if (memo)
            {
                var miss = code.Scope("memo")["miss"];
                var found = CodeObjectMemo.EmitFind(code, PidTgid, codeSlot, miss, out memoIndex);
                Activation(CodeObjectMemo.Fields(found).Flags, () => EmitRememberedRecord(code, RecordStart, facts, found, options));
                code.Jump(Exit)
                    .Label(miss);
            }
            var span = CodeObjectFields.EmitReadSpan(code, layout, codeSlot, withFlags: creation || init is not null);
            Activation(span.Flags, () =>
            {
                // An inline __init__ only looks up what the common entry learned (its first calls, before the call site
                // specialised, went through the hook): learning would double what the verifier walks at launch.
                if (memo && init is null) EmitLearningRecord(code, RecordStart, facts, span, codeSlot, memoIndex, options);
                else EmitRecord(code, RecordStart, facts, span, options);
            });
        }
        code.Label(Exit)
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>Builds and sends the record for the code object whose span is <paramref name="span"/>, both names copied.</summary>
    private static void EmitRecord(InstructionBuilder code, Action recordStart, CPythonFacts facts, CodeObjectSpan span, UsdtEventOptions options)
    {
        recordStart();
        code.StoreImm(MemorySize.Word, Scratch, Field(UsdtEventLayout.TruncatedOffset), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(0)), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(1)), 0);
        var forms = new StrFormSlots(code.Stack.Allocate(8, "filename form"), code.Stack.Allocate(8, "name form"));
        var fields = new CodeObjectSlots(code.Stack.Allocate(8, "filename"), code.Stack.Allocate(8, "name"), code.Stack.Allocate(8, "first line"), forms);
        CodeObjectFields.EmitFields(code, facts, span, fields);
        short[] values = [fields.Filename, fields.Name, fields.FirstLine];
        for (var i = 0; i < values.Length; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, values[i])
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(i)), Register.R1);

        EmitStringCopies(code, forms);
        EventProgramParts.EmitSend(code, Scratch, StringBytes, Layout.StringsOffset, options.WakeupThreshold, queues: options.Queues);
    }

    /// <summary>
    /// The record of a code object the memo knows (its value copied to <paramref name="found"/>): both names interned
    /// (data address and fingerprint, no bytes), its first line.
    /// </summary>
    private static void EmitRememberedRecord(InstructionBuilder code, Action recordStart, CPythonFacts facts, short found, UsdtEventOptions options)
    {
        recordStart();
        var objects = CodeObjectMemo.Objects(found);
        short[] objectSlots = [objects.Filename, objects.Name];
        code.StoreImm(MemorySize.Word, Scratch, Field(UsdtEventLayout.TruncatedOffset), 0)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, CodeObjectMemo.Fields(found).FirstLine)
            .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(2)), Register.R1);
        // Both strs are compact ASCII: their bytes right after the header.
        for (var j = 0; j < 2; j++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(found + CodeObjectMemo.FingerprintAt(j)))
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(j)), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, objectSlots[j])
                .Add64(Register.R1, facts.Str.AsciiData)
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(j)), Register.R1)
                .StoreImm(MemorySize.HalfWord, Scratch, Field(Layout.LengthOffset(j)), UsdtEventLayout.InternedLength);
        code.Mov64(StringBytes, 0);
        EventProgramParts.EmitSend(code, Scratch, StringBytes, Layout.StringsOffset, options.WakeupThreshold, queues: options.Queues);
    }

    /// <summary>
    /// The record of a code object the memo does not know: each str's header read, its bytes copied, and for a compact
    /// ASCII str copied whole a fingerprint of those bytes, so user space learns them; then the memo remembers the code
    /// object (with both fingerprints only).
    /// </summary>
    /// <param name="memoIndex">The code object's slot in the memo, as the failed lookup left it.</param>
    private static void EmitLearningRecord(InstructionBuilder code, Action recordStart, CPythonFacts facts, CodeObjectSpan span, short codeSlot, short memoIndex, UsdtEventOptions options)
    {
        var c = span.Layout;
        recordStart();
        code.StoreImm(MemorySize.Word, Scratch, Field(UsdtEventLayout.TruncatedOffset), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(0)), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(1)), 0);
        var objects = new StrObjectSlots(code.Stack.Allocate(8, "co_filename"), code.Stack.Allocate(8, "co_qualname"));
        short[] objectSlots = [objects.Filename, objects.Name];
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, span.At(c.Filename))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, objects.Filename, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, span.At(c.Qualname ?? c.Name))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, objects.Name, Register.R1)
            // int co_firstlineno, zero-extended.
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, span.At(c.FirstLineNo))
            .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(2)), Register.R1);

        var data = code.Stack.Allocate(8, "str data");
        var eligible = code.Stack.Allocate(8, "compact ascii lengths");
        short[] headers = [code.Stack.Allocate(CodeObjectFields.StrHeaderSize, "filename header"), code.Stack.Allocate(CodeObjectFields.StrHeaderSize, "name header")];
        var forms = new StrFormSlots(code.Stack.Allocate(8, "filename form"), code.Stack.Allocate(8, "name form"));
        short[] formSlots = [forms.Filename, forms.Name];
        for (var j = 0; j < 2; j++)
        {
            var scope = code.Scope("ascii");
            string not = scope["not"], next = scope["next"];
            CodeObjectFields.EmitStringHeader(code, facts.Str, objectSlots[j], headers[j], data, formSlots[j]);
            var (length, state) = (headers[j], (short)(headers[j] + facts.Str.State - facts.Str.Length));
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, data)
                .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(j)), Register.R1)
                // Only a compact ASCII str can be named by its object alone (bytes at a fixed offset): its length is
                // kept for the test after the copy, else (or when too long to copy whole) -1.
                .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, state)
                .And64(Register.R1, (int)StrLayout.CompactAsciiBits)
                .JumpIf(JumpCondition.NotEqual, Register.R1, (int)StrLayout.CompactAsciiBits, not)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, length)
                .JumpIf(JumpCondition.Greater, Register.R1, UsdtEventLayout.MaxStringLength, not)
                .StoreMem(MemorySize.Word, Register.FramePointer, (short)(eligible + 4 * j), Register.R1)
                .Jump(next)
                .Label(not)
                .StoreImm(MemorySize.Word, Register.FramePointer, (short)(eligible + 4 * j), -1)
                .Label(next);
        }

        EmitStringCopies(code, forms);

        BytesFingerprint.EmitForCopiedPair(code, Layout, Scratch, eligible, StringBytes);
        // The bytes the record carries, back from its two lengths (each at most MaxStringLength: the copies cut there).
        var send = code.Scope("learn")["send"];
        code.LoadMem(MemorySize.HalfWord, StringBytes, Scratch, Field(Layout.LengthOffset(0)))
            .JumpIf(JumpCondition.Greater, StringBytes, UsdtEventLayout.MaxStringLength, Exit)
            .LoadMem(MemorySize.HalfWord, Register.R1, Scratch, Field(Layout.LengthOffset(1)))
            .JumpIf(JumpCondition.Greater, Register.R1, UsdtEventLayout.MaxStringLength, Exit)
            .Add64(StringBytes, Register.R1);
        // The memo only with both fingerprints.
        for (var j = 0; j < 2; j++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Scratch, Field(Layout.FingerprintOffset(j)))
                .JumpIf(JumpCondition.Equal, Register.R1, 0, send);
        CodeObjectMemo.EmitRemember(code, PidTgid, codeSlot, memoIndex, objects, span.Flags, Scratch,
            [Field(Layout.FingerprintOffset(0)), Field(Layout.FingerprintOffset(1))], Field(UsdtEventLayout.ValueOffset(2)));
        code.Label(send);
        EventProgramParts.EmitSend(code, Scratch, StringBytes, Layout.StringsOffset, options.WakeupThreshold, queues: options.Queues);
    }

    /// <summary>
    /// Copies both strings whose data pointers are in the record, whole up to MaxStringLength bytes each, as many bytes
    /// as their <paramref name="forms"/> say (R9 = bytes copied).
    /// </summary>
    private static void EmitStringCopies(InstructionBuilder code, StrFormSlots forms)
    {
        short[] formSlots = [forms.Filename, forms.Name];
        code.Mov64(StringBytes, 0);
        for (var j = 0; j < Layout.StringArguments.Length; j++)
        {
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Scratch, Field(UsdtEventLayout.ValueOffset(Layout.StringArguments[j])));
            CodeObjectFields.EmitSizedCopy(code, Scratch, EventProgramParts.RecordOffset + Layout.StringsOffset, StringBytes, UsdtEventLayout.MaxStringLength,
                new StringFields(Field(Layout.LengthOffset(j)), MemorySize.HalfWord, Field(UsdtEventLayout.TruncatedOffset), j),
                formSlots[j], UsdtEventLayout.EncodingShift(j));
        }
    }

    private static short Field(int recordOffset) => EventProgramParts.Field(recordOffset);
}
