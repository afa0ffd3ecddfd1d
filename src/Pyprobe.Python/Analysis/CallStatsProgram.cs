using Pyprobe.Python.EvalFrame;
using Pyprobe.Usdt.CodeGen;
using static Pyprobe.Python.Analysis.CallStatsLayout;

namespace Pyprobe.Python.Analysis;

/// <summary>The maps the generated call-statistics programs use.</summary>
/// <param name="StacksFd">LRU hash: u32 tid → thread stack (<see cref="CallStatsLayout"/>).</param>
/// <param name="StatsFd">Per-CPU hash: 24-byte key → stats value.</param>
/// <param name="ZeroFd">Array with one all-zero entry, the initial value for new stacks and stats.</param>
/// <param name="ScratchFd">Per-CPU array with one entry: counters, then the name record being built.</param>
/// <param name="RingFd">Ring buffer for name records.</param>
/// <param name="PidsFd">Hash of allowed tgids (u32 → u8), or null for every process.</param>
/// <param name="DepthsFd">The <see cref="ActivationStack"/>'s depths (eval-frame sources only, else -1).</param>
/// <param name="FramesFd">The <see cref="ActivationStack"/>'s frames (eval-frame sources only, else -1).</param>
/// <param name="TlsOffsetsFd">pid → offset of _Py_tss_tstate, for USDT entries that find their frame through it (<see cref="EntryFrameCode"/>), else -1.</param>
/// <param name="GenerationsFd">Array of u32: code objects died per (process, name address) slot (<see cref="CallStatsProgram.GenerationsMap"/>).</param>
/// <param name="EpochsFd">The epochs of <see cref="CodeObjectMemoMaps"/> (a u64 per tgid slot that changes at exec and exit, and when a process is attached).</param>
/// <param name="Tgids">The target's processes, compared as constants in place of the <paramref name="PidsFd"/> lookup, or null.</param>
/// <param name="ZeroChunkFd">The <see cref="ActivationStack"/>'s zeroed chunk (eval-frame sources only, else -1).</param>
public sealed record CallStatsMaps(int StacksFd, int StatsFd, int ZeroFd, int ScratchFd, int RingFd, int? PidsFd, int DepthsFd = -1, int FramesFd = -1, int TlsOffsetsFd = -1,
    int GenerationsFd = -1, int EpochsFd = -1, IReadOnlyList<int>? Tgids = null, int ZeroChunkFd = -1);

/// <summary>What a generated program does at its probe.</summary>
public enum CallStatsProbeKind
{
    /// <summary>function__entry: push a frame on the thread's stack.</summary>
    Entry,
    /// <summary>function__return with entries available: pop the matching frame and account its duration.</summary>
    TimedReturn,
    /// <summary>function__return without entries (3.11 without the gate, or only counts asked for): count the call, no time.</summary>
    CountingReturn,
    /// <summary>_PyEval_EvalFrameDefault's entry with no return programs (only counts asked for): count the activation there, no time.</summary>
    CountingEntry,
}

/// <summary>
/// Generates the programs behind <see cref="CallStatsSession"/>. Everything is aggregated in the kernel; only
/// a function's names travel to user space, once, when its stats entry is created.
/// </summary>
/// <remarks>
/// Return matching: the returning (filename, funcname) pointers are compared with the top frame and, if that
/// differs, with up to <see cref="MatchWindow"/>-1 frames below it (unrolled, no loops). On a match the frames
/// above it are discarded (3.15 generator creation pushes an ENTRY that never returns) and their callee time is
/// credited to the matched frame; with no match the stack is left alone and the call is counted without a time
/// (3.15 throw() returns without an entry; calls already running at attach time). Frames deeper than
/// the stack size only move the depth counter, and their returns are counted without a time.
/// </remarks>
public static class CallStatsProgram
{
    /// <summary>How many frames from the top a return is compared with.</summary>
    public const int MatchWindow = 4;

    /// <summary>Map names in the generated code (<see cref="Build"/>); <see cref="CallStatsMaps"/> gives their fds.</summary>
    public const string StacksMap = "stacks", StatsMap = "stats", ZeroMap = "zero", ScratchMap = "scratch", RingMap = "ring", PidsMap = "pids";

    /// <summary>
    /// u64 per slot (the key takes its low half), by a hash of (tgid, a function name's address): how many code objects with that name died in that
    /// process (<see cref="ForgetProgram"/>). A call's row is keyed with it, so a code object made where a dead one was,
    /// its names where the dead one's were, starts a row of its own (and its names are sent) instead of adding its calls
    /// to the dead one's row under the dead one's names. A live function whose slot moves on (another code object of the
    /// same name died) only continues in a new row with the same names, which user space adds to the first.
    /// </summary>
    public const string GenerationsMap = "cgen";

    /// <summary>The memo epochs (<see cref="CodeObjectMemo.EpochsMap"/>'s map), by tgid slot.</summary>
    public const string EpochsMap = "cepoch";

    /// <summary>Generation slots (a power of two).</summary>
    public const uint GenerationSlots = 65536;
    private const int GenerationBits = 16;

    private static readonly Register Ctx = Register.R6;
    private static readonly Register PidTgid = Register.R7;

    /// <summary>Generates the program and binds it to the session's maps.</summary>
    public static AssembledProgram Generate(CallStatsProbeKind kind, CallSiteSource source, CallStatsMaps maps, int maxFrames)
    {
        var fds = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            [StacksMap] = maps.StacksFd, [StatsMap] = maps.StatsFd, [ZeroMap] = maps.ZeroFd, [ScratchMap] = maps.ScratchFd, [RingMap] = maps.RingFd,
            [GenerationsMap] = maps.GenerationsFd, [EpochsMap] = maps.EpochsFd,
        };
        if (maps.PidsFd is int pids) fds[PidsMap] = pids;
        if (source is CallSiteSource.EvalFrame)
        {
            fds[ActivationStack.DepthsMap] = maps.DepthsFd;
            fds[ActivationStack.FramesMap] = maps.FramesFd;
            fds[ActivationStack.ZeroChunkMap] = maps.ZeroChunkFd;
        }
        if (source is CallSiteSource.Usdt { FrameCode.NeedsTlsOffsets: true } && kind == CallStatsProbeKind.Entry) fds[EntryFrameCode.TlsOffsetsMap] = maps.TlsOffsetsFd;
        return Build(kind, source, maps.PidsFd is not null && maps.Tgids is null, maxFrames, maps.Tgids).BindMaps(fds);
    }

    /// <summary>
    /// Generates the program with its maps by name (<see cref="StacksMap"/> …; <see cref="PidsMap"/> when <paramref name="filterPids"/>;
    /// the <see cref="ActivationStack"/>'s for an eval-frame source).
    /// </summary>
    /// <param name="tgids">Processes to keep, compared as constants (then <paramref name="filterPids"/> is not needed), or null.</param>
    public static AssembledProgram Build(CallStatsProbeKind kind, CallSiteSource source, bool filterPids, int maxFrames, IReadOnlyList<int>? tgids = null)
    {
        if (source is CallSiteSource.Usdt { Arguments.Count: < 3 } usdt) throw new UsdtException($"function probes have 3 arguments, this site has {usdt.Arguments.Count}");
        if (maxFrames is < MatchWindow or > 1024) throw new ArgumentOutOfRangeException(nameof(maxFrames), "stack size must be between 4 and 1024 frames");
        // USDT calls count at their return (CountingReturn): at the entry the frame's reads would buy only a first line.
        if (kind == CallStatsProbeKind.CountingEntry && source is not CallSiteSource.EvalFrame) throw new ArgumentException("only _PyEval_EvalFrameDefault's entry counts calls by itself", nameof(kind));
        var code = new InstructionBuilder();
        code.Mov64(Ctx, Register.R1)
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(PidTgid, Register.R0);
        PidFilter.Emit(code, PidTgid, filterPids ? PidsMap : null, tids: null, "out", tgids);
        var emitter = new Emitter(code, maxFrames, namesHaveForms: source is CallSiteSource.EvalFrame);

        if (kind == CallStatsProbeKind.TimedReturn)
            code.Call(HelperFunction.KtimeGetNs).StoreMem(MemorySize.DoubleWord, Register.FramePointer, emitter.SlotNow, Register.R0);

        var slots = new[] { emitter.SlotFilename, emitter.SlotFuncname, emitter.SlotLine };
        if (source is CallSiteSource.Usdt probe)
        {
            var load = code.Stack.Allocate(8, "argument");
            for (var i = 0; i < 3; i++)
            {
                UsdtArgumentEmitter.EmitLoad(code, probe.Arguments[i], Ctx, load, probe.SiteAddress, probe.ResolveSymbol);
                code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots[i], Register.R0);
            }
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, emitter.SlotFuncname)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, emitter.SlotKeyName, Register.R1);
            // The key is the code object's first line (and qualified name), not where this activation starts; returns
            // still match on the probe's own name pointers.
            if (kind == CallStatsProbeKind.Entry) probe.FrameCode?.Emit(code, Ctx, probe.SiteAddress, emitter.SlotLine, emitter.SlotKeyName);
        }
        else if (source is CallSiteSource.EvalFrame frame)
        {
            // The entry pushes the code object, a ret pops it: either way the function is its code object.
            var codeObject = code.Stack.Allocate(8, "code object");
            var creation = ActivationStack.CreationRunsFrame(frame.Facts, frame.Layout);
            CodeObjectSpan span;
            if (frame.InlineInit && kind is CallStatsProbeKind.Entry or CallStatsProbeKind.CountingEntry)
            {
                InlineInitFrames.EmitReadCode(code, frame.Facts.InlineInit!, Ctx, codeObject, "out");
                span = CodeObjectFields.EmitReadSpan(code, frame.Layout, codeObject, withFlags: true);
                InlineInitFrames.EmitSkipGeneratorLike(code, span.Flags!.Value, "out");
                if (kind == CallStatsProbeKind.Entry) InlineInitFrames.EmitPush(code, PidTgid, codeObject, "out");
            }
            else if (frame.InlineInit)
            {
                InlineInitFrames.EmitPopEnded(code, frame.Layout, Ctx, PidTgid, codeObject, "out");
                span = CodeObjectFields.EmitReadSpan(code, frame.Layout, codeObject, withFlags: false);
            }
            else if (kind == CallStatsProbeKind.Entry)
            {
                // co_flags comes with the span of the fields (one read), the frame's owner only for generator-like code.
                ActivationStack.EmitReadCode(code, frame.Facts, frame.Layout, Ctx, codeObject, "out");
                span = CodeObjectFields.EmitReadSpan(code, frame.Layout, codeObject, withFlags: creation);
                if (creation) ActivationStack.EmitTagCreation(code, frame.Facts, frame.Layout, Ctx, span.Flags!.Value, codeObject);
                ActivationStack.EmitPushCode(code, PidTgid, codeObject, "out");
                // Creating a generator is not a call (CPython's profiler agrees): pushed for its ret, never counted.
                if (creation) ActivationStack.EmitSkipCreation(code, codeObject, "out");
            }
            else if (kind == CallStatsProbeKind.CountingEntry)
            {
                // As the entry above, without the push: nothing pops (no return programs).
                ActivationStack.EmitReadCode(code, frame.Facts, frame.Layout, Ctx, codeObject, "out");
                span = CodeObjectFields.EmitReadSpan(code, frame.Layout, codeObject, withFlags: creation);
                if (creation)
                {
                    ActivationStack.EmitTagCreation(code, frame.Facts, frame.Layout, Ctx, span.Flags!.Value, codeObject);
                    ActivationStack.EmitSkipCreation(code, codeObject, "out");
                }
            }
            else
            {
                ActivationStack.EmitPop(code, PidTgid, codeObject, "out");
                if (creation) ActivationStack.EmitSkipCreation(code, codeObject, "out");
                span = CodeObjectFields.EmitReadSpan(code, frame.Layout, codeObject, withFlags: false);
            }
            CodeObjectFields.EmitFields(code, frame.Facts, span, new CodeObjectSlots(emitter.SlotFilename, emitter.SlotFuncname, emitter.SlotLine, emitter.Forms));
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, emitter.SlotFuncname)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, emitter.SlotKeyName, Register.R1);
            emitter.ReturnKnowsFirstLine = true;
        }
        code.StoreImm(MemorySize.Word, Register.FramePointer, emitter.SlotZeroKey, 0)
            .Mov32(Register.R1, PidTgid)
            .StoreMem(MemorySize.Word, Register.FramePointer, emitter.SlotTid, Register.R1);

        switch (kind)
        {
            case CallStatsProbeKind.Entry:
                emitter.EmitGeneration(emitter.SlotKeyName);
                emitter.EmitEntry();
                break;
            case CallStatsProbeKind.TimedReturn:
                emitter.EmitTimedReturn();
                emitter.EmitAccount(timed: true);
                break;
            default:
                emitter.EmitUntimedKey();
                emitter.EmitAccount(timed: false);
                break;
        }

        code.Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>Writes the generation slot index of (this process, the name address in <paramref name="name"/>) onto the stack; returns the slot. Clobbers R1, R2.</summary>
    private static short EmitGenerationIndex(InstructionBuilder code, Register pidTgid, Register name)
    {
        if (name != Register.R1) code.Mov64(Register.R1, name);
        return DirectMappedMemo.EmitIndex(code, pidTgid, 47, GenerationBits, "generation index");
    }

    /// <summary>
    /// The uprobe on PyCode_Type's tp_dealloc (<see cref="CodeDeallocSite"/>) for call statistics: the code object in rdi
    /// is dying, so the generation of each name it can be keyed by moves on: co_name's, and co_qualname's where the version
    /// has one, each by the address of its bytes: inline for a compact ASCII str; for another compact str both its
    /// characters (as the eval-frame programs name it) and its cached UTF-8 copy (as USDT's arguments do).
    /// </summary>
    public static AssembledProgram ForgetProgram(CodeLayout layout, StrLayout str)
    {
        var code = new InstructionBuilder();
        var codeObject = code.Stack.Allocate(8, "code object");
        var name = code.Stack.Allocate(8, "name object");
        // The str from its state to its cached UTF-8 pointer (PyCompactUnicodeObject: header, utf8_length, utf8).
        var utf8Pointer = str.AsciiData + 8;
        var tail = code.Stack.Allocate((utf8Pointer + 8 - str.State + 7) / 8 * 8, "str state to utf8");
        CodeDeallocSite.EmitDyingCodeObject(code, codeObject);
        foreach (var field in new[] { layout.Name, layout.Qualname }.OfType<int>().Distinct())
        {
            var next = code.Scope("name")["next"];
            code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, name)
                .Mov64(Register.R2, 8)
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeObject)
                .Add64(Register.R3, field)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, next)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, name)
                .JumpIf(JumpCondition.Equal, Register.R1, 0, next)
                .Add64(Register.R1, str.AsciiData);
            EmitBump(code);
            // A str that is not ASCII is keyed by its characters (eval-frame sources) or by its cached UTF-8 copy (USDT's).
            code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, tail)
                .Mov64(Register.R2, utf8Pointer + 8 - str.State)
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, name)
                .Add64(Register.R3, str.State)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, next)
                .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, tail)
                .And64(Register.R1, (int)StrLayout.CompactAsciiBits)
                .JumpIf(JumpCondition.NotEqual, Register.R1, (int)StrLayout.CompactBit, next)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, name)
                .Add64(Register.R1, str.CompactData);
            EmitBump(code);
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(tail + utf8Pointer - str.State))
                .JumpIf(JumpCondition.Equal, Register.R1, 0, next);
            EmitBump(code);
            code.Label(next);
        }
        code.Mov64(Register.R0, 0).Exit();
        return code.Assemble();

        // The generation of (this process, the name address in R1) moves on; clobbers R0–R5.
        static void EmitBump(InstructionBuilder code)
        {
            var bumped = code.Scope("bump")["done"];
            var index = EmitGenerationIndex(code, Register.R7, Register.R1);
            MapLookup.Emit(code, GenerationsMap, index, bumped)
                .Mov64(Register.R1, 1)
                .AtomicAdd64(Register.R0, 0, Register.R1)
                .Label(bumped);
        }
    }

    /// <summary>The fragments of one program, sharing its builder and stack slots.</summary>
    /// <param name="namesHaveForms">
    /// The names were read from the code object (<see cref="CodeObjectFields.EmitFields"/> with <see cref="Forms"/>): their
    /// byte counts and encodings are known; else they are USDT's UTF-8 strings, copied up to their NUL.
    /// </param>
    private sealed class Emitter(InstructionBuilder code, int maxFrames, bool namesHaveForms)
    {
        public readonly short SlotZeroKey = code.Stack.Allocate(4, "zero key");
        public readonly short SlotFilename = code.Stack.Allocate(8, "filename");
        public readonly short SlotFuncname = code.Stack.Allocate(8, "funcname");
        /// <summary>The name an entry's row is keyed by (what <see cref="SlotFuncname"/> holds unless the entry read a qualified name).</summary>
        public readonly short SlotKeyName = code.Stack.Allocate(8, "key funcname");
        public readonly short SlotLine = code.Stack.Allocate(8, "line");
        /// <summary>What <see cref="SlotFilename"/> and <see cref="SlotFuncname"/> point at, where the names were read from the code object.</summary>
        public readonly StrFormSlots Forms = new(code.Stack.Allocate(8, "filename form"), code.Stack.Allocate(8, "funcname form"));
        public readonly short SlotNow = code.Stack.Allocate(8, "now");
        public readonly short SlotTid = code.Stack.Allocate(4, "tid");
        private readonly short SlotDuration = code.Stack.Allocate(8, "duration");
        private readonly short SlotSelf = code.Stack.Allocate(8, "self time");
        private readonly short SlotTimed = code.Stack.Allocate(8, "timed");
        private readonly short SlotDiscarded = code.Stack.Allocate(8, "discarded frames");
        private readonly short SlotKey = code.Stack.Allocate(KeySize, "stats key");
        private readonly short SlotGeneration = code.Stack.Allocate(8, "generation and epoch");

        /// <summary>
        /// The name's generation (<see cref="GenerationsMap"/>) and the process's epoch into the generation slot (u32 each;
        /// 0 when a map has no value). Clobbers R0–R5.
        /// </summary>
        public void EmitGeneration(short nameSlot)
        {
            var labels = code.Scope("generation");
            code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotGeneration, 0)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, nameSlot);
            var index = EmitGenerationIndex(code, PidTgid, Register.R1);
            MapLookup.Emit(code, GenerationsMap, index, labels["epoch"])
                .LoadMem(MemorySize.Word, Register.R1, Register.R0, 0)
                .StoreMem(MemorySize.Word, Register.FramePointer, SlotGeneration, Register.R1)
                .Label(labels["epoch"]);
            DirectMappedMemo.EmitEpoch(code, PidTgid, EpochsMap, CodeObjectMemo.EpochSlots, labels["done"]);
            code.LoadMem(MemorySize.Word, Register.R1, Register.R0, 0)
                .StoreMem(MemorySize.Word, Register.FramePointer, (short)(SlotGeneration + 4), Register.R1)
                .Label(labels["done"]);
        }

        private short Key(int fieldOffset) => (short)(SlotKey + fieldOffset);

        /// <summary>A return's own line is its function's first line (eval-frame), not where it returned (USDT).</summary>
        public bool ReturnKnowsFirstLine { get; set; }

        /// <summary>Finds or creates the calling thread's stack; leaves it in R8, or jumps to <paramref name="missing"/>.</summary>
        public void EmitStackLookup(bool create, string missing)
        {
            if (create)
            {
                MapLookup.EmitFindOrCreate(code, StacksMap, SlotTid, () => EmitZeroLookup("out").Mov64(Register.R3, Register.R0), "have_stack");
                EmitCount(NoStackCounter);
            }
            else
            {
                code.LoadMap(Register.R1, StacksMap)
                    .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotTid)
                    .Call(HelperFunction.MapLookupElem)
                    .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "have_stack");
            }
            code.Jump(missing)
                .Label("have_stack")
                .Mov64(Register.R8, Register.R0);
        }

        public void EmitEntry()
        {
            EmitStackLookup(create: true, "out");
            code.LoadMem(MemorySize.Word, Register.R2, Register.R8, 0)
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R2, maxFrames, "entry_overflow")
                .Mov64(Register.R9, Register.R2).Mul64(Register.R9, FrameSize).Add64(Register.R9, Register.R8)
                .Add64(Register.R2, 1)
                .StoreMem(MemorySize.Word, Register.R8, 0, Register.R2)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFilename)
                .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameFilenameOffset), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFuncname)
                .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameFuncnameOffset), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotKeyName)
                .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameKeyNameOffset), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotLine)
                .StoreMem(MemorySize.Word, Register.R9, Frame(FrameLineOffset), Register.R1)
                .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, SlotGeneration)
                .StoreMem(MemorySize.Word, Register.R9, Frame(FrameGenerationOffset), Register.R1)
                .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, (short)(SlotGeneration + 4))
                .StoreMem(MemorySize.Word, Register.R9, Frame(FrameEpochOffset), Register.R1)
                .StoreImm(MemorySize.DoubleWord, Register.R9, Frame(FrameChildOffset), 0)
                // The timestamp comes last so the probe's own cost is charged to the caller, not the callee.
                .Call(HelperFunction.KtimeGetNs)
                .StoreMem(MemorySize.DoubleWord, Register.R9, Frame(FrameEntryOffset), Register.R0)
                .Jump("out")
                .Label("entry_overflow")
                // Deeper than the stack: only the depth moves (capped so a runaway count cannot wrap).
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R2, 1 << 30, "out")
                .Add64(Register.R2, 1)
                .StoreMem(MemorySize.Word, Register.R8, 0, Register.R2);
            EmitCount(OverflowEntriesCounter);
            code.Jump("out");
        }

        public void EmitTimedReturn()
        {
            EmitStackLookup(create: false, "unmatched");
            code.LoadMem(MemorySize.Word, Register.R2, Register.R8, 0)
                .JumpIf(JumpCondition.Equal, Register.R2, 0, "unmatched")
                .JumpIf(JumpCondition.Greater, Register.R2, maxFrames, "return_overflow")
                .Mov64(Register.R1, 0) // callee time of discarded frames
                .LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, SlotFilename)
                .LoadMem(MemorySize.DoubleWord, Register.R9, Register.FramePointer, SlotFuncname);
            for (var k = 0; k < MatchWindow; k++)
            {
                if (k > 0) code.JumpIf(JumpCondition.LessOrEqual, Register.R2, k, "unmatched");
                code.Mov64(Register.R3, Register.R2).Sub64(Register.R3, k + 1)
                    .Mov64(Register.R4, Register.R3).Mul64(Register.R4, FrameSize).Add64(Register.R4, Register.R8)
                    .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameFilenameOffset))
                    .JumpIf(JumpCondition.NotEqual, Register.R5, Register.R0, $"next{k}")
                    .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameFuncnameOffset))
                    .JumpIf(JumpCondition.Equal, Register.R5, Register.R9, "matched")
                    .Label($"next{k}")
                    .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameChildOffset))
                    .Add64(Register.R1, Register.R5);
            }
            code.Jump("unmatched");

            // R2 = depth before, R3 = index of the matched frame (= new depth), R4 = that frame, R1 = discarded callee time.
            code.Label("matched")
                .StoreMem(MemorySize.Word, Register.R8, 0, Register.R3)
                .Mov64(Register.R5, Register.R2).Sub64(Register.R5, Register.R3).Sub64(Register.R5, 1)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotDiscarded, Register.R5)
                .LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, SlotNow)
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameEntryOffset))
                .Sub64(Register.R0, Register.R5)
                .JumpIf(JumpCondition.SignedGreater, Register.R0, 0, "duration_ok")
                .Mov64(Register.R0, 1) // keep 0 free as "no minimum yet"
                .Label("duration_ok")
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotDuration, Register.R0)
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R4, Frame(FrameChildOffset))
                .Add64(Register.R5, Register.R1)
                .Mov64(Register.R1, Register.R0).Sub64(Register.R1, Register.R5)
                .JumpIf(JumpCondition.SignedGreaterOrEqual, Register.R1, 0, "self_ok")
                .Mov64(Register.R1, 0)
                .Label("self_ok")
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotSelf, Register.R1)
                .Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
                .StoreMem(MemorySize.Word, Register.FramePointer, Key(KeyPidOffset), Register.R1)
                .LoadMem(MemorySize.Word, Register.R1, Register.R4, Frame(FrameLineOffset))
                .StoreMem(MemorySize.Word, Register.FramePointer, Key(KeyLineOffset), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R4, Frame(FrameFilenameOffset))
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, Key(KeyFilenameOffset), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R4, Frame(FrameKeyNameOffset))
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, Key(KeyFuncnameOffset), Register.R1)
                .LoadMem(MemorySize.Word, Register.R1, Register.R4, Frame(FrameGenerationOffset))
                .StoreMem(MemorySize.Word, Register.FramePointer, Key(KeyGenerationOffset), Register.R1)
                .LoadMem(MemorySize.Word, Register.R1, Register.R4, Frame(FrameEpochOffset))
                .StoreMem(MemorySize.Word, Register.FramePointer, Key(KeyEpochOffset), Register.R1)
                .StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotTimed, 1)
                // The caller's frame (if stored) learns how long this callee took.
                .JumpIf(JumpCondition.Less, Register.R3, 1, "parent_done")
                .Sub64(Register.R3, 1).Mul64(Register.R3, FrameSize).Add64(Register.R3, Register.R8)
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R3, Frame(FrameChildOffset))
                .Add64(Register.R5, Register.R0)
                .StoreMem(MemorySize.DoubleWord, Register.R3, Frame(FrameChildOffset), Register.R5)
                .Label("parent_done")
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotDiscarded)
                .JumpIf(JumpCondition.Equal, Register.R1, 0, "account");
            EmitCount(DiscardedFramesCounter, SlotDiscarded);
            code.Jump("account");

            code.Label("return_overflow")
                .Sub64(Register.R2, 1)
                .StoreMem(MemorySize.Word, Register.R8, 0, Register.R2)
                .Jump("untimed")
                .Label("unmatched");
            EmitCount(UnmatchedReturnsCounter);
            EmitUntimedKey();
        }

        /// <summary>Key from the return's own arguments (first line unknown unless <see cref="ReturnKnowsFirstLine"/>), no duration.</summary>
        public void EmitUntimedKey()
        {
            code.Label("untimed");
            EmitGeneration(SlotFuncname);
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotGeneration)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, Key(KeyGenerationOffset), Register.R1)
                .Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
                .StoreMem(MemorySize.Word, Register.FramePointer, Key(KeyPidOffset), Register.R1);
            if (ReturnKnowsFirstLine)
                code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotLine)
                    .StoreMem(MemorySize.Word, Register.FramePointer, Key(KeyLineOffset), Register.R1);
            else
                code.StoreImm(MemorySize.Word, Register.FramePointer, Key(KeyLineOffset), 0);
            code
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFilename)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, Key(KeyFilenameOffset), Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotFuncname)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, Key(KeyFuncnameOffset), Register.R1)
                .StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotTimed, 0)
                .Jump("account");
        }

        /// <summary>
        /// Adds the call (key at SlotKey, duration/self at their slots when SlotTimed is 1) to the stats,
        /// creating the entry, and sending the names, the first time the key is seen. A program whose calls are never
        /// <paramref name="timed"/> adds to the calls counter alone, the one field of a counts-only session's value
        /// (<see cref="CountsValueSize"/>).
        /// </summary>
        public void EmitAccount(bool timed)
        {
            // Only the program that created the entry sends the names (another CPU may have won the race).
            code.Label("account");
            MapLookup.EmitFindOrCreate(code, StatsMap, SlotKey, () => EmitZeroLookup("out").Mov64(Register.R3, Register.R0), "have_stats", () => EmitNameRecord(withCall: false));
            // No entry could be made (the kernel's allocator was out of memory for the moment, or the table is full):
            // the call goes to user space with the names instead, so it is still counted.
            EmitNameRecord(withCall: true);
            code.Jump("out");

            var stats = Register.R8;
            code.Label("have_stats")
                .Mov64(stats, Register.R0)
                .Mov64(Register.R1, 1)
                .AtomicAdd64(stats, CallsOffset, Register.R1);
            if (!timed)
            {
                code.Jump("out");
                return;
            }
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotTimed)
                .JumpIf(JumpCondition.Equal, Register.R1, 0, "out")
                .AtomicAdd64(stats, TimedOffset, Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotSelf)
                .AtomicAdd64(stats, SelfOffset, Register.R1)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotDuration)
                .AtomicAdd64(stats, TotalOffset, Register.R1)
                // min/max: plain read-compare-write (see CallStatsSession remarks: the GIL keeps a function's returns apart).
                .LoadMem(MemorySize.DoubleWord, Register.R2, stats, MinOffset)
                .JumpIf(JumpCondition.Equal, Register.R2, 0, "set_min")
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R1, Register.R2, "min_done")
                .Label("set_min")
                .StoreMem(MemorySize.DoubleWord, stats, MinOffset, Register.R1)
                .Label("min_done")
                .LoadMem(MemorySize.DoubleWord, Register.R2, stats, MaxOffset)
                .JumpIf(JumpCondition.LessOrEqual, Register.R1, Register.R2, "max_done")
                .StoreMem(MemorySize.DoubleWord, stats, MaxOffset, Register.R1)
                .Label("max_done");

            HistogramBucketCode.Emit(code)
                .Lsh64(Register.R3, 3)
                .Add64(stats, Register.R3)
                .Mov64(Register.R1, 1)
                .AtomicAdd64(stats, HistogramOffset, Register.R1)
                .Jump("out");
        }

        /// <summary>
        /// Sends key + both strings (read from the key's pointers) to the ring; with <paramref name="withCall"/> the
        /// record also carries this call (timed flag, duration, self). A full ring is counted: as lost names, or as
        /// calls not counted.
        /// </summary>
        public void EmitNameRecord(bool withCall)
        {
            var scratch = Register.R8;
            var bytes = Register.R9;
            var sent = code.Scope("names")["done"];
            MapLookup.Emit(code, ScratchMap, SlotZeroKey, sent)
                .Mov64(scratch, Register.R0);
            for (var offset = 0; offset < KeySize; offset += 8)
            {
                code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, Key(offset))
                    .StoreMem(MemorySize.DoubleWord, scratch, Record(offset), Register.R1);
            }
            code.StoreImm(MemorySize.Word, scratch, Record(NameLengthsOffset), 0)
                .StoreImm(MemorySize.Word, scratch, Record(NameTruncatedOffset), withCall ? unchecked((int)CarriesCallFlag) : 0)
                .Mov64(bytes, 0);
            if (withCall)
            {
                foreach (var (slot, field) in new[] { (SlotTimed, CallTimedOffset), (SlotDuration, CallDurationOffset), (SlotSelf, CallSelfOffset) })
                    code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot)
                        .StoreMem(MemorySize.DoubleWord, scratch, Record(field), Register.R1);
            }
            EmitStringCopy(0, KeyFilenameOffset, Forms.Filename, scratch, bytes);
            EmitStringCopy(1, KeyFuncnameOffset, Forms.Name, scratch, bytes);
            RingOutput.Emit(code, RingMap, scratch, ScratchRecordOffset, bytes, NameStringsOffset, scratch, withCall ? StatsFullCounter : LostNamesCounter);
            code.Label(sent);
        }

        /// <summary>
        /// Copies the string the key's pointer at <paramref name="pointerOffset"/> names. An eval-frame program's key holds
        /// the names it read itself (a return matches its frame by both pointers), so <paramref name="formSlot"/> says
        /// what they are.
        /// </summary>
        private void EmitStringCopy(int index, int pointerOffset, short formSlot, Register scratch, Register bytes)
        {
            var fields = new StringFields(Record(NameLengthsOffset + 2 * index), MemorySize.HalfWord, Record(NameTruncatedOffset), index);
            code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Record(pointerOffset));
            if (namesHaveForms)
                CodeObjectFields.EmitSizedCopy(code, scratch, ScratchRecordOffset + NameStringsOffset, bytes, MaxNameLength, fields, formSlot, Usdt.CodeGen.UsdtEventLayout.EncodingShift(index));
            else
                UserStringCopy.Emit(code, scratch, ScratchRecordOffset + NameStringsOffset, bytes, keep: MaxNameLength, readSize: MaxNameLength + 1, fields);
        }

        /// <summary>R0 = the all-zero value, or jump to <paramref name="missing"/>. Clobbers R0–R5.</summary>
        private InstructionBuilder EmitZeroLookup(string missing) => MapLookup.Emit(code, ZeroMap, SlotZeroKey, missing);

        /// <summary>Adds 1 (or the u64 in <paramref name="amountSlot"/>) to a per-CPU counter. Clobbers R0–R5.</summary>
        private void EmitCount(int counterOffset, short? amountSlot = null)
        {
            var counted = code.Scope("count")["done"];
            MapLookup.Emit(code, ScratchMap, SlotZeroKey, counted);
            if (amountSlot is short slot) code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot);
            else code.Mov64(Register.R1, 1);
            code.AtomicAdd64(Register.R0, (short)counterOffset, Register.R1)
                .Label(counted)
                .Mov64(Register.R0, 0);
        }

        private static short Frame(int fieldOffset) => (short)(StackHeaderSize + fieldOffset);
        private static short Record(int recordOffset) => (short)(ScratchRecordOffset + recordOffset);
    }
}
