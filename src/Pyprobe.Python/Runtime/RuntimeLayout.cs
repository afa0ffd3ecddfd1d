namespace Pyprobe.Python.Runtime;

/// <summary>
/// Byte offsets along the path a stack walker follows: _PyRuntime → interpreters → thread states →
/// frames → code objects, plus the object layouts needed to read names and values (x86-64, GIL
/// build). Filled from <c>_Py_DebugOffsets</c> on 3.13+ and from <see cref="LayoutTables"/> before.
/// </summary>
public sealed record RuntimeLayout(
    RuntimeStateLayout Runtime,
    InterpreterLayout Interpreter,
    ThreadStateLayout ThreadState,
    FrameLayout Frame,
    CodeLayout Code,
    StrLayout Str,
    PyObjectLayout Objects)
{
    /// <summary>
    /// Every offset under a stable dotted name (the names the header-compiling test prints), so a
    /// layout can be compared field by field with another source.
    /// </summary>
    public IEnumerable<KeyValuePair<string, long>> Fields()
    {
        static KeyValuePair<string, long> F(string name, long value) => new(name, value);
        yield return F("runtime.interpreters_head", Runtime.InterpretersHead);
        if (Runtime.GilHolder is int holder) yield return F("runtime.gil_holder", holder);
        if (Runtime.TssKey is int key) yield return F("runtime.tss_key", key);
        yield return F("interp.next", Interpreter.Next);
        yield return F("interp.threads_head", Interpreter.ThreadsHead);
        yield return F("interp.modules", Interpreter.Modules);
        if (Interpreter.CevalGil is int gil) yield return F("interp.ceval_gil", gil);
        if (Interpreter.GilLastHolder is int holder2) yield return F("gil.last_holder", holder2);
        if (Interpreter.GilLocked is int locked) yield return F("gil.locked", locked);
        yield return F("tstate.next", ThreadState.Next);
        yield return F("tstate.interp", ThreadState.Interp);
        yield return F("tstate.thread_id", ThreadState.ThreadId);
        if (ThreadState.NativeThreadId is int native) yield return F("tstate.native_thread_id", native);
        yield return F("tstate.top_frame", ThreadState.TopFrame);
        if (ThreadState.CFrameCurrentFrame is int cf) yield return F("cframe.current_frame", cf);
        if (ThreadState.BaseFrame is int bf) yield return F("tstate.base_frame", bf);
        yield return F("frame.previous", Frame.Previous);
        yield return F("frame.code", Frame.Code);
        yield return F("frame.position", Frame.Position);
        if (Frame.Owner is int owner) yield return F("frame.owner", owner);
        if (Frame.IsEntry is int entry) yield return F("frame.is_entry", entry);
        if (Frame.Size is int size) yield return F("frame.size", size);
        yield return F("frame.localsplus", Frame.LocalsPlus);
        yield return F("code.filename", Code.Filename);
        yield return F("code.name", Code.Name);
        if (Code.Qualname is int q) yield return F("code.qualname", q);
        if (Code.CodeAdaptive is int ca) yield return F("code.code_adaptive", ca);
        if (Code.CodeBytes is int cb) yield return F("code.code", cb);
        yield return F("code.firstlineno", Code.FirstLineNo);
        yield return F("code.argcount", Code.ArgCount);
        yield return F("code.kwonlyargcount", Code.KwOnlyArgCount);
        yield return F("code.flags", Code.Flags);
        yield return F("code.linetable", Code.LineTable);
        yield return F("code.localsplusnames", Code.LocalNames);
        if (Code.LocalKinds is int kinds) yield return F("code.localspluskinds", kinds);
        if (Code.CellNames is int cells) yield return F("code.cellvars", cells);
        if (Code.FreeNames is int frees) yield return F("code.freevars", frees);
        yield return F("str.length", Str.Length);
        yield return F("str.hash", Str.Hash);
        yield return F("str.state", Str.State);
        yield return F("str.ascii_data", Str.AsciiData);
        yield return F("str.compact_data", Str.CompactData);
        yield return F("object.ob_type", PyObjectLayout.ObType);
        yield return F("object.ob_size", PyObjectLayout.VarSize);
        yield return F("bytes.ob_sval", PyObjectLayout.BytesData);
        yield return F("float.ob_fval", PyObjectLayout.FloatValue);
        yield return F("long.ob_digit", PyObjectLayout.LongDigits);
        yield return F("tuple.ob_item", Objects.TupleItems);
        yield return F("list.ob_item", PyObjectLayout.ListItems);
        yield return F("type.tp_name", PyObjectLayout.TypeName);
    }
}

/// <summary>Offsets inside <c>_PyRuntimeState</c> (the <c>_PyRuntime</c> symbol).</summary>
/// <param name="InterpretersHead">interpreters.head: the first PyInterpreterState*.</param>
/// <param name="GilHolder">gilstate.tstate_current, the thread state holding the GIL (3.8–3.11; null later).</param>
/// <param name="TssKey">The pthread key (an int) of autoTSSkey, the thread → thread state TSS (3.8–3.14; null on 3.15).</param>
public sealed record RuntimeStateLayout(int InterpretersHead, int? GilHolder, int? TssKey);

/// <summary>Offsets inside PyInterpreterState.</summary>
/// <param name="Next">next interpreter (subinterpreters).</param>
/// <param name="ThreadsHead">tstate_head (≤3.10) / threads.head: the first PyThreadState*.</param>
/// <param name="Modules">modules (≤3.11) / imports.modules: sys.modules, the dict of every imported module.</param>
/// <param name="CevalGil">3.12+: ceval.gil, the interpreter's _gil_runtime_state* (its own, or the main interpreter's it shares); null before (one GIL, its holder in the runtime).</param>
/// <param name="GilLastHolder">3.12+: _gil_runtime_state.last_holder, the thread state that took the GIL last.</param>
/// <param name="GilLocked">3.12+: _gil_runtime_state.locked, an int: whether the GIL is held now.</param>
public sealed record InterpreterLayout(int Next, int ThreadsHead, int Modules, int? CevalGil = null, int? GilLastHolder = null, int? GilLocked = null);

/// <summary>Offsets inside PyThreadState.</summary>
/// <param name="TopFrame">3.8–3.10 <c>frame</c> (PyFrameObject*); 3.11–3.12 <c>cframe</c> (a _PyCFrame*, follow <see cref="CFrameCurrentFrame"/>); 3.13+ <c>current_frame</c>.</param>
/// <param name="CFrameCurrentFrame">3.11–3.12: offset of current_frame inside _PyCFrame; null otherwise.</param>
/// <param name="BaseFrame">3.15: the per-thread sentinel frame embedded in the thread state, which ends every complete walk.</param>
/// <param name="ThreadId">pthread_self() of the thread (the TCB address = fsbase on glibc).</param>
/// <param name="NativeThreadId">The kernel tid (3.11+; null before).</param>
/// <param name="Interp">interp: the thread's PyInterpreterState*.</param>
public sealed record ThreadStateLayout(int Next, int ThreadId, int? NativeThreadId, int TopFrame, int? CFrameCurrentFrame, int? BaseFrame, int Interp = 16);

/// <summary>What a frame's instruction position field holds.</summary>
public enum InstructionPosition
{
    /// <summary>int f_lasti: byte offset of the last instruction in co_code (3.8–3.9).</summary>
    LastiBytes,
    /// <summary>int f_lasti: index of the last instruction in 2-byte code units (3.10).</summary>
    LastiCodeUnits,
    /// <summary>prev_instr: pointer to the last started code unit inside co_code_adaptive (3.11–3.12).</summary>
    PreviousInstructionPointer,
    /// <summary>instr_ptr: pointer to the current/next code unit inside co_code_adaptive (3.13+).</summary>
    InstructionPointer,
}

/// <summary>
/// Offsets inside a frame: PyFrameObject (3.8–3.10) or _PyInterpreterFrame (3.11+).
/// </summary>
/// <param name="Code">f_code / f_executable.</param>
/// <param name="Previous">f_back / previous.</param>
/// <param name="Position">f_lasti / prev_instr / instr_ptr; meaning in <see cref="PositionKind"/>.</param>
/// <param name="Owner">owner byte (3.11+).</param>
/// <param name="IsEntry">3.11 is_entry byte (a C call entered the interpreter here).</param>
/// <param name="FirstNonFrameOwner">Owner values ≥ this are not Python frames (C-stack shims, interpreter-owned sentinels): 3 on 3.12+; null when every frame is real.</param>
/// <param name="CodeTagMask">Low bits to clear from <see cref="Code"/> (3.14+ tagged _PyStackRef: 3).</param>
/// <param name="NoneCodeIsEntry">3.13: an entry frame's f_executable is Py_None (compare with _Py_NoneStruct).</param>
/// <param name="Size">sizeof(_PyInterpreterFrame) where known.</param>
/// <param name="LocalsPlus">f_localsplus / localsplus: the frame's local variables, then its cells and free variables (3.14+: _PyStackRef, tagged as <see cref="CodeTagMask"/>).</param>
public sealed record FrameLayout(int Code, int Previous, int Position, InstructionPosition PositionKind, int? Owner, int? IsEntry,
    int? FirstNonFrameOwner, ulong CodeTagMask, bool NoneCodeIsEntry, int? Size, int LocalsPlus);

/// <summary>How a code object maps instructions to lines.</summary>
public enum LineTableFormat
{
    /// <summary>co_lnotab (3.8–3.9): (byte increment, signed line increment) pairs.</summary>
    Lnotab,
    /// <summary>co_linetable of PEP 626 (3.10): (byte delta, signed line delta, -128 = no line) pairs.</summary>
    LineTable310,
    /// <summary>co_linetable location table (3.11+): varint-coded entries in code units.</summary>
    Locations311,
}

/// <summary>Offsets inside PyCodeObject.</summary>
/// <param name="Qualname">co_qualname (3.11+).</param>
/// <param name="CodeAdaptive">co_code_adaptive: the bytecode inline in the code object (3.11+).</param>
/// <param name="CodeBytes">co_code: a bytes object holding the bytecode (3.8–3.10).</param>
/// <param name="LocalNames">The names of the frame's slots, a tuple: co_varnames (3.8–3.10: the locals, arguments first) / co_localsplusnames (3.11+: locals, cells and free variables).</param>
/// <param name="LocalKinds">co_localspluskinds (3.11+): a bytes object, one CO_FAST_* kind per slot.</param>
/// <param name="CellNames">co_cellvars (3.8–3.10): the names of the cells, whose slots follow the locals (an argument a closure shares lives there, its local slot emptied).</param>
/// <param name="FreeNames">co_freevars (3.8–3.10): the names of the free variables, whose slots follow the cells.</param>
/// <param name="ArgCount">co_argcount (an int): the positional parameters, positional-only ones included.</param>
/// <param name="KwOnlyArgCount">co_kwonlyargcount (an int): the keyword-only parameters, after the positional ones.</param>
/// <param name="Flags">co_flags (an int): CO_VARARGS (0x4) and CO_VARKEYWORDS (0x8) say *args and **kwargs follow them.</param>
public sealed record CodeLayout(int Filename, int Name, int? Qualname, int FirstLineNo, int LineTable, LineTableFormat LineTableFormat,
    int? CodeAdaptive, int? CodeBytes, int LocalNames, int? LocalKinds, int ArgCount, int KwOnlyArgCount, int Flags, int? CellNames = null, int? FreeNames = null);

/// <summary>
/// The str (PyUnicodeObject) layout. The state bit-field is interned:2, kind:3, compact:1, ascii:1
/// on every supported version, so compact is bit 5, ascii bit 6 and the kind (1/2/4 bytes) bits 2–4.
/// </summary>
/// <param name="AsciiData">sizeof(PyASCIIObject): where a compact ASCII string's bytes start (48 ≤3.11, 40 from 3.12).</param>
/// <param name="CompactData">sizeof(PyCompactUnicodeObject): where a compact non-ASCII string's code units start (72 / 56).</param>
public sealed record StrLayout(int AsciiData, int CompactData)
{
    public int Length => 16;
    public int Hash => 24;
    public int State => 32;
    public const uint CompactBit = 1u << 5;
    public const uint AsciiBit = 1u << 6;
    public const uint CompactAsciiBits = CompactBit | AsciiBit;
    public const int KindShift = 2;
    public const uint KindMask = 7;
    /// <summary>Where the length field lies relative to a compact ASCII string's first byte (negative).</summary>
    public int LengthFromAsciiData => Length - AsciiData;
}
