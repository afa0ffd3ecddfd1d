namespace Pyprobe.Python.Runtime;

/// <summary>
/// Layouts of CPython 3.8–3.12, which publish no _Py_DebugOffsets: data per minor version, every
/// value printed by offsetof() against the internal headers of the pyenv builds 3.8.18–3.12.1
/// (RuntimeLayoutHeaderTests recompiles and compares them). x86-64 release GIL builds only.
/// </summary>
internal static class LayoutTables
{
    private static readonly StrLayout WstrStr = new(AsciiData: 48, CompactData: 72);
    private static readonly PyObjectLayout WstrObjects = new(TupleItems: 24, AsciiData: 48, CompactData: 72, LongTag: false);

    // 3.8–3.10: PyFrameObject chain from tstate->frame; f_lasti counts bytes up to 3.9, code units in 3.10.
    private static RuntimeLayout FrameObjectEra(int gilHolder, int tssKey, int modules, int lasti, int localsPlus, InstructionPosition unit, LineTableFormat lines) => new(
        new RuntimeStateLayout(InterpretersHead: 32, GilHolder: gilHolder, TssKey: tssKey),
        new InterpreterLayout(Next: 0, ThreadsHead: 8, Modules: modules),
        new ThreadStateLayout(Next: 8, ThreadId: 176, NativeThreadId: null, TopFrame: 24, CFrameCurrentFrame: null, BaseFrame: null),
        new FrameLayout(Code: 32, Previous: 24, Position: lasti, PositionKind: unit, Owner: null, IsEntry: null,
            FirstNonFrameOwner: null, CodeTagMask: 0, NoneCodeIsEntry: false, Size: null, LocalsPlus: localsPlus),
        new CodeLayout(Filename: 104, Name: 112, Qualname: null, FirstLineNo: 40, LineTable: 120, LineTableFormat: lines, CodeAdaptive: null, CodeBytes: 48,
            LocalNames: 72, LocalKinds: null, ArgCount: 16, KwOnlyArgCount: 24, Flags: 36, CellNames: 88, FreeNames: 80),
        WstrStr, WstrObjects);

    public static RuntimeLayout? For(int minor) => minor switch
    {
        8 => FrameObjectEra(gilHolder: 1368, tssKey: 1396, modules: 56, lasti: 104, localsPlus: 360, InstructionPosition.LastiBytes, LineTableFormat.Lnotab),
        9 => FrameObjectEra(gilHolder: 568, tssKey: 588, modules: 856, lasti: 104, localsPlus: 360, InstructionPosition.LastiBytes, LineTableFormat.Lnotab),
        10 => FrameObjectEra(gilHolder: 568, tssKey: 588, modules: 856, lasti: 96, localsPlus: 352, InstructionPosition.LastiCodeUnits, LineTableFormat.LineTable310),
        11 => new RuntimeLayout(
            new RuntimeStateLayout(InterpretersHead: 40, GilHolder: 576, TssKey: 596),
            new InterpreterLayout(Next: 0, ThreadsHead: 16, Modules: 888),
            new ThreadStateLayout(Next: 8, ThreadId: 152, NativeThreadId: 160, TopFrame: 56, CFrameCurrentFrame: 8, BaseFrame: null),
            new FrameLayout(Code: 32, Previous: 48, Position: 56, PositionKind: InstructionPosition.PreviousInstructionPointer, Owner: 69, IsEntry: 68,
                FirstNonFrameOwner: null, CodeTagMask: 0, NoneCodeIsEntry: false, Size: 80, LocalsPlus: 72),
            new CodeLayout(Filename: 112, Name: 120, Qualname: 128, FirstLineNo: 72, LineTable: 136, LineTableFormat: LineTableFormat.Locations311, CodeAdaptive: 184, CodeBytes: null,
                LocalNames: 96, LocalKinds: 104, ArgCount: 56, KwOnlyArgCount: 64, Flags: 48),
            WstrStr, WstrObjects),
        12 => new RuntimeLayout(
            new RuntimeStateLayout(InterpretersHead: 40, GilHolder: null, TssKey: 1548),
            new InterpreterLayout(Next: 0, ThreadsHead: 72, Modules: 944, CevalGil: 384, GilLastHolder: 8, GilLocked: 16),
            new ThreadStateLayout(Next: 8, ThreadId: 136, NativeThreadId: 144, TopFrame: 56, CFrameCurrentFrame: 0, BaseFrame: null),
            // owner 3 = FRAME_OWNED_BY_CSTACK: the shim frame a C call pushes, not Python code.
            new FrameLayout(Code: 0, Previous: 8, Position: 56, PositionKind: InstructionPosition.PreviousInstructionPointer, Owner: 70, IsEntry: null,
                FirstNonFrameOwner: 3, CodeTagMask: 0, NoneCodeIsEntry: false, Size: 80, LocalsPlus: 72),
            new CodeLayout(Filename: 112, Name: 120, Qualname: 128, FirstLineNo: 68, LineTable: 136, LineTableFormat: LineTableFormat.Locations311, CodeAdaptive: 192, CodeBytes: null,
                LocalNames: 96, LocalKinds: 104, ArgCount: 52, KwOnlyArgCount: 60, Flags: 48),
            new StrLayout(AsciiData: 40, CompactData: 56),
            new PyObjectLayout(TupleItems: 24, AsciiData: 40, CompactData: 56, LongTag: true)),
        _ => null,
    };
}
