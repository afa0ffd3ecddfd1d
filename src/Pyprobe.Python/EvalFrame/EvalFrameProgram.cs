using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Asm;
using Pyprobe.Python.Runtime;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.EvalFrame;

/// <summary>The maps the eval-frame programs use.</summary>
/// <param name="RingFd">The session's ring buffer.</param>
/// <param name="ScratchFd">The session's per-CPU scratch (hits and lost counters at 0 and 8, the record from 16, as the USDT event program).</param>
/// <param name="DepthsFd">LRU hash u32 tid → u64 activations open on that thread.</param>
/// <param name="FramesFd">LRU hash (u32 tid, u32 depth) → u64 code object of that open activation.</param>
/// <param name="TargetsFd">Hash of allowed tgids, or null for every process.</param>
/// <param name="Tids">Threads to keep, or null for all.</param>
/// <param name="WakeupThreshold">Ring fill above which a record wakes the reader.</param>
/// <summary>Which program: entry (push and send), push only (returns alone were asked for), or return (pop and send).</summary>
public enum EvalFrameProgramKind { Entry, PushOnly, Return }

public sealed record EvalFrameMaps(int RingFd, int ScratchFd, int DepthsFd, int FramesFd, int? TargetsFd, IReadOnlyList<int>? Tids, int WakeupThreshold);

/// <summary>
/// Generates the programs on _PyEval_EvalFrameDefault: at its entry (one Python activation begins: a call, a
/// generator resume or a throw()) and at each of its ret instructions (it ends). They write records in the layout
/// of the USDT function__entry/function__return events (filename, function name, first line), so everything
/// that reads those works unchanged. The name is co_qualname where the version has one, else co_name.
/// </summary>
/// <remarks>
/// At a ret the frame is no longer in any register, so entries push the code object on a per-thread stack (a
/// depth per thread and one map entry per open activation) and rets pop it. A ret on a thread with no open
/// activation (one that began before pyprobe attached) is dropped, never guessed.
/// </remarks>
public static class EvalFrameProgram
{
    /// <summary>As in UsdtEventProgram's scratch value: two counters, then the record.</summary>
    private const int RecordOffset = 16;
    private const int HitsCounterOffset = 0;
    private const int LostCounterOffset = 8;

    // x86-64 struct pt_regs offsets.
    private const short PtRegsRdi = 112;
    private const short PtRegsRsi = 104;

    private const short SlotKey = -8;
    private const short SlotCode = -16;
    private const short SlotZero = -24;
    private const short SlotFrameKey = -32;
    private const short SlotFilenameObject = -40;
    private const short SlotNameObject = -48;
    private const short SlotLine = -56;
    private const short SlotState = -64;

    private static readonly Register Ctx = Register.R6;
    private static readonly Register PidTgid = Register.R7;
    private static readonly Register Scratch = Register.R8;
    private static readonly Register StringBytes = Register.R9;

    /// <summary>The layout of the records: that of function__entry/function__return (filename, funcname, lineno).</summary>
    public static UsdtEventLayout Layout { get; } = new(3, [0, 1]);

    public static AssembledProgram Generate(EvalFrameProgramKind kind, CPythonFacts facts, RuntimeLayout layout, EvalFrameMaps maps)
    {
        var code = new InstructionBuilder();
        code.Mov64(Ctx, Register.R1)
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(PidTgid, Register.R0);
        EmitFilters(code, maps);
        if (kind == EvalFrameProgramKind.Return) EmitPop(code, maps);
        else EmitPush(code, facts, layout, maps);
        if (kind != EvalFrameProgramKind.PushOnly) EmitRecord(code, facts, layout, maps);
        code.Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble().BindMaps(new Dictionary<string, int> { ["ring"] = maps.RingFd });
    }

    private static void EmitFilters(InstructionBuilder code, EvalFrameMaps maps)
    {
        if (maps.TargetsFd is int targets)
        {
            code.Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
                .StoreMem(MemorySize.Word, Register.FramePointer, SlotKey, Register.R1)
                .LoadMapFd(Register.R1, targets)
                .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
                .Call(HelperFunction.MapLookupElem)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, "out");
        }
        if (maps.Tids is { Count: > 0 } tids)
        {
            foreach (var tid in tids) code.JumpIf32(JumpCondition.Equal, PidTgid, tid, "tid_ok");
            code.Jump("out").Label("tid_ok");
        }
    }

    /// <summary>Reads the frame's code object and pushes it on the thread's stack; leaves it at <see cref="SlotCode"/>.</summary>
    private static void EmitPush(InstructionBuilder code, CPythonFacts facts, RuntimeLayout layout, EvalFrameMaps maps)
    {
        // 3.8: (PyFrameObject *f, int throwflag); 3.9+: (PyThreadState *tstate, frame, int throwflag).
        var frameRegister = facts.Version.Minor == 8 ? PtRegsRdi : PtRegsRsi;
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Ctx, frameRegister)
            .Add64(Register.R3, layout.Frame.Code)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, SlotCode)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "out");
        if (layout.Frame.CodeTagMask != 0)
        {
            // 3.14+: a tagged _PyStackRef; the low bits are flags, not address.
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotCode)
                .And64(Register.R1, ~(int)layout.Frame.CodeTagMask)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotCode, Register.R1);
        }
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, SlotCode)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, "out");

        EmitDepth(code, maps);
        // R0 points at the thread's depth: one more activation is open.
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .Add64(Register.R1, 1)
            .StoreMem(MemorySize.DoubleWord, Register.R0, 0, Register.R1)
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotFrameKey + 4, Register.R1)
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotFrameKey, PidTgid)
            .LoadMapFd(Register.R1, maps.FramesFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotFrameKey)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, SlotCode)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem);
    }

    /// <summary>Pops the thread's innermost open activation; leaves its code object at <see cref="SlotCode"/>.</summary>
    private static void EmitPop(InstructionBuilder code, EvalFrameMaps maps)
    {
        code.StoreMem(MemorySize.Word, Register.FramePointer, SlotKey, PidTgid)
            .LoadMapFd(Register.R1, maps.DepthsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, "out")
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotFrameKey + 4, Register.R1)
            .Sub64(Register.R1, 1)
            .StoreMem(MemorySize.DoubleWord, Register.R0, 0, Register.R1)
            .StoreMem(MemorySize.Word, Register.FramePointer, SlotFrameKey, PidTgid)
            .LoadMapFd(Register.R1, maps.FramesFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotFrameKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R0, 0)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, SlotCode, Register.R1);
    }

    /// <summary>R0 = pointer to the thread's depth counter, created at 0 when missing.</summary>
    private static void EmitDepth(InstructionBuilder code, EvalFrameMaps maps)
    {
        code.StoreMem(MemorySize.Word, Register.FramePointer, SlotKey, PidTgid)
            .LoadMapFd(Register.R1, maps.DepthsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "have_depth")
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotZero, 0)
            .LoadMapFd(Register.R1, maps.DepthsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, SlotZero)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .LoadMapFd(Register.R1, maps.DepthsFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Label("have_depth");
    }

    /// <summary>Builds and sends the record for the code object at <see cref="SlotCode"/>.</summary>
    private static void EmitRecord(InstructionBuilder code, CPythonFacts facts, RuntimeLayout layout, EvalFrameMaps maps)
    {
        code.StoreImm(MemorySize.Word, Register.FramePointer, SlotKey, 0)
            .LoadMapFd(Register.R1, maps.ScratchFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, SlotKey)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(Scratch, Register.R0)
            .Mov64(Register.R1, 1)
            .AtomicAdd64(Scratch, HitsCounterOffset, Register.R1);

        code.Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.TimestampOffset), Register.R0)
            .Mov64(Register.R1, PidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, Scratch, Field(UsdtEventLayout.TgidOffset), Register.R1)
            .StoreMem(MemorySize.Word, Scratch, Field(UsdtEventLayout.TidOffset), PidTgid)
            .Mov64(Register.R1, Ctx)
            .Call(HelperFunction.GetAttachCookie)
            .StoreMem(MemorySize.Word, Scratch, Field(UsdtEventLayout.ProbeIdOffset), Register.R0)
            .StoreImm(MemorySize.Word, Scratch, Field(UsdtEventLayout.TruncatedOffset), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(0)), 0)
            .StoreImm(MemorySize.DoubleWord, Scratch, Field(Layout.FingerprintOffset(1)), 0);

        var c = layout.Code;
        ReadCodeField(code, c.Filename, 8, SlotFilenameObject);
        ReadCodeField(code, c.Qualname ?? c.Name, 8, SlotNameObject);
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotLine, 0);
        ReadCodeField(code, c.FirstLineNo, 4, SlotLine);
        code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, SlotLine)
            .StoreMem(MemorySize.DoubleWord, Scratch, Field(UsdtEventLayout.ValueOffset(2)), Register.R1);

        EmitStringData(code, facts.Str, SlotFilenameObject, 0);
        EmitStringData(code, facts.Str, SlotNameObject, 1);

        code.Mov64(StringBytes, 0);
        EmitStringCopy(code, 0);
        EmitStringCopy(code, 1);

        RingOutput.EmitWakeupFlags(code, "ring", maps.WakeupThreshold);
        code.LoadMapFd(Register.R1, maps.RingFd)
            .Mov64(Register.R2, Scratch).Add64(Register.R2, RecordOffset)
            .Mov64(Register.R3, StringBytes).Add64(Register.R3, Layout.StringsOffset)
            .Call(HelperFunction.RingbufOutput)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(Register.R1, 1)
            .AtomicAdd64(Scratch, LostCounterOffset, Register.R1);
    }

    private static void ReadCodeField(InstructionBuilder code, int offset, int size, short slot)
    {
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, slot)
            .Mov64(Register.R2, size)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, SlotCode)
            .Add64(Register.R3, offset)
            .Call(HelperFunction.ProbeReadUser);
        if (size == 8)
        {
            // A failed read leaves garbage in the slot: make it NULL, which reads as an empty string.
            code.JumpIf(JumpCondition.Equal, Register.R0, 0, $"read{slot}")
                .StoreImm(MemorySize.DoubleWord, Register.FramePointer, slot, 0)
                .Label($"read{slot}");
        }
    }

    /// <summary>
    /// value[argument] = where the UTF-8 bytes of the str at <paramref name="objectSlot"/> are: inline after the
    /// header for a compact ASCII str, else its cached utf8 pointer (NULL when never asked for: an empty name).
    /// </summary>
    private static void EmitStringData(InstructionBuilder code, StrLayout str, short objectSlot, int argument)
    {
        string ascii = $"ascii{argument}", done = $"data{argument}";
        var value = Field(UsdtEventLayout.ValueOffset(argument));
        code.StoreImm(MemorySize.DoubleWord, Scratch, value, 0)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, SlotState, 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, SlotState)
            .Mov64(Register.R2, 4)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, objectSlot)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, done)
            .Add64(Register.R3, str.State)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, done)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, SlotState)
            .Mov64(Register.R2, Register.R1)
            .And64(Register.R2, (int)StrLayout.CompactAsciiBits)
            .JumpIf(JumpCondition.Equal, Register.R2, (int)StrLayout.CompactAsciiBits, ascii)
            .And64(Register.R1, (int)StrLayout.CompactBit)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, done)
            // PyCompactUnicodeObject: the header, utf8_length, then char *utf8.
            .Mov64(Register.R1, Scratch).Add64(Register.R1, value)
            .Mov64(Register.R2, 8)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, objectSlot)
            .Add64(Register.R3, str.AsciiData + 8)
            .Call(HelperFunction.ProbeReadUser)
            .Jump(done)
            .Label(ascii)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, objectSlot)
            .Add64(Register.R1, str.AsciiData)
            .StoreMem(MemorySize.DoubleWord, Scratch, value, Register.R1)
            .Label(done);
    }

    /// <summary>Appends string <paramref name="index"/> after the previous one, cut and marked past the limit (as the USDT program does).</summary>
    private static void EmitStringCopy(InstructionBuilder code, int index)
    {
        var argument = Layout.StringArguments[index];
        string empty = $"empty{index}", cut = $"cut{index}", done = $"copied{index}";
        code.Mov64(Register.R1, Scratch).Add64(Register.R1, RecordOffset + Layout.StringsOffset).Add64(Register.R1, StringBytes)
            .Mov64(Register.R2, UsdtEventLayout.MaxStringLength + 2)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Scratch, Field(UsdtEventLayout.ValueOffset(argument)))
            .Call(HelperFunction.ProbeReadUserStr)
            .JumpIf(JumpCondition.SignedLess, Register.R0, 1, empty)
            .JumpIf(JumpCondition.SignedGreater, Register.R0, UsdtEventLayout.MaxStringLength + 1, cut)
            .Sub64(Register.R0, 1)
            .Jump(done)
            .Label(cut)
            .Mov64(Register.R0, UsdtEventLayout.MaxStringLength)
            .LoadMem(MemorySize.Word, Register.R1, Scratch, Field(UsdtEventLayout.TruncatedOffset))
            .Or64(Register.R1, 1 << index)
            .StoreMem(MemorySize.Word, Scratch, Field(UsdtEventLayout.TruncatedOffset), Register.R1)
            .Jump(done)
            .Label(empty)
            .Mov64(Register.R0, 0)
            .Label(done)
            .StoreMem(MemorySize.HalfWord, Scratch, Field(Layout.LengthOffset(index)), Register.R0)
            .Add64(StringBytes, Register.R0);
    }

    private static short Field(int recordOffset) => (short)(RecordOffset + recordOffset);
}
