using Pyprobe.Python.Versions;

namespace Pyprobe.Python.Runtime;

/// <summary>
/// CPython 3.13+'s <c>_Py_DebugOffsets</c>: the first field of _PyRuntimeState (section .PyRuntime),
/// cookie "xdebugpy", PY_VERSION_HEX, free_threaded, then groups of u64 sizes and offsets. The struct
/// differs per minor version and is stable within one, so it is parsed field by field from a list per
/// minor: 3.13 from the 3.13.0 header; 3.14 and 3.15 from the 3.14/3.15 headers, checked value by value
/// against the Debian 3.14.10 and 3.15.2 binaries (DebugOffsetsTests).
/// </summary>
public sealed class DebugOffsets
{
    public static ReadOnlySpan<byte> Cookie => "xdebugpy"u8;

    private static readonly string[] Runtime = ["runtime_state.size", "runtime_state.finalizing", "runtime_state.interpreters_head"];
    private static readonly string[] Interpreter313 = ["interpreter_state.size", "interpreter_state.id", "interpreter_state.next", "interpreter_state.threads_head",
        "interpreter_state.gc", "interpreter_state.imports_modules", "interpreter_state.sysdict", "interpreter_state.builtins", "interpreter_state.ceval_gil",
        "interpreter_state.gil_runtime_state", "interpreter_state.gil_runtime_state_enabled", "interpreter_state.gil_runtime_state_locked", "interpreter_state.gil_runtime_state_holder"];
    private static readonly string[] Interpreter314 = ["interpreter_state.size", "interpreter_state.id", "interpreter_state.next", "interpreter_state.threads_head",
        "interpreter_state.threads_main", "interpreter_state.gc", "interpreter_state.imports_modules", "interpreter_state.sysdict", "interpreter_state.builtins",
        "interpreter_state.ceval_gil", "interpreter_state.gil_runtime_state", "interpreter_state.gil_runtime_state_enabled", "interpreter_state.gil_runtime_state_locked",
        "interpreter_state.gil_runtime_state_holder", "interpreter_state.code_object_generation", "interpreter_state.tlbc_generation"];
    private static readonly string[] Thread313 = ["thread_state.size", "thread_state.prev", "thread_state.next", "thread_state.interp", "thread_state.current_frame",
        "thread_state.thread_id", "thread_state.native_thread_id", "thread_state.datastack_chunk", "thread_state.status"];
    private static readonly string[] Thread315 = ["thread_state.size", "thread_state.prev", "thread_state.next", "thread_state.interp", "thread_state.current_frame",
        "thread_state.base_frame", "thread_state.last_profiled_frame", "thread_state.last_profiled_frame_seq", "thread_state.thread_id", "thread_state.native_thread_id",
        "thread_state.datastack_chunk", "thread_state.status", "thread_state.holds_gil", "thread_state.gil_requested", "thread_state.current_exception", "thread_state.exc_state"];
    private static readonly string[] ErrStackItem = ["err_stackitem.exc_value"];
    private static readonly string[] Frame313 = ["interpreter_frame.size", "interpreter_frame.previous", "interpreter_frame.executable", "interpreter_frame.instr_ptr",
        "interpreter_frame.localsplus", "interpreter_frame.owner"];
    private static readonly string[] Frame314 = [.. Frame313, "interpreter_frame.stackpointer", "interpreter_frame.tlbc_index"];
    private static readonly string[] Code313 = ["code_object.size", "code_object.filename", "code_object.name", "code_object.qualname", "code_object.linetable",
        "code_object.firstlineno", "code_object.argcount", "code_object.localsplusnames", "code_object.localspluskinds", "code_object.co_code_adaptive"];
    private static readonly string[] Code314 = [.. Code313, "code_object.co_tlbc"];
    private static readonly string[] PyObject = ["pyobject.size", "pyobject.ob_type"];
    private static readonly string[] Type313 = ["type_object.size", "type_object.tp_name", "type_object.tp_repr", "type_object.tp_flags"];
    private static readonly string[] Type315 = [.. Type313, "type_object.tp_basicsize", "type_object.tp_dictoffset"];
    private static readonly string[] HeapType = ["heap_type_object.size", "heap_type_object.ht_cached_keys"];
    private static readonly string[] Tuple = ["tuple_object.size", "tuple_object.ob_item", "tuple_object.ob_size"];
    private static readonly string[] List = ["list_object.size", "list_object.ob_item", "list_object.ob_size"];
    private static readonly string[] Set = ["set_object.size", "set_object.used", "set_object.table", "set_object.mask"];
    private static readonly string[] Dict = ["dict_object.size", "dict_object.ma_keys", "dict_object.ma_values"];
    private static readonly string[] Float = ["float_object.size", "float_object.ob_fval"];
    private static readonly string[] Long = ["long_object.size", "long_object.lv_tag", "long_object.ob_digit"];
    private static readonly string[] Bytes = ["bytes_object.size", "bytes_object.ob_size", "bytes_object.ob_sval"];
    private static readonly string[] Unicode313 = ["unicode_object.size", "unicode_object.state", "unicode_object.length", "unicode_object.asciiobject_size"];
    private static readonly string[] Unicode315 = [.. Unicode313, "unicode_object.compactunicodeobject_size"];
    private static readonly string[] Gc313 = ["gc.size", "gc.collecting"];
    private static readonly string[] Gc315 = [.. Gc313, "gc.frame", "gc.generation_stats_size", "gc.generation_stats"];
    private static readonly string[] Gen = ["gen_object.size", "gen_object.gi_name", "gen_object.gi_iframe", "gen_object.gi_frame_state"];
    private static readonly string[] LlistNode = ["llist_node.next", "llist_node.prev"];
    private static readonly string[] Debugger = ["debugger_support.eval_breaker", "debugger_support.remote_debugger_support", "debugger_support.remote_debugging_enabled",
        "debugger_support.debugger_pending_call", "debugger_support.debugger_script_path", "debugger_support.debugger_script_path_size"];

    /// <summary>The u64 fields after cookie, version and free_threaded, in struct order, per minor version.</summary>
    internal static IReadOnlyList<string>? FieldsOf(int minor) => minor switch
    {
        13 => [.. Runtime, .. Interpreter313, .. Thread313, .. Frame313, .. Code313, .. PyObject, .. Type313, .. Tuple, .. List, .. Dict, .. Float, .. Long, .. Bytes, .. Unicode313, .. Gc313],
        14 => [.. Runtime, .. Interpreter314, .. Thread313, .. Frame314, .. Code314, .. PyObject, .. Type313, .. Tuple, .. List, .. Set, .. Dict, .. Float, .. Long, .. Bytes,
            .. Unicode313, .. Gc313, .. Gen, .. LlistNode, .. Debugger],
        15 => [.. Runtime, .. Interpreter314, .. Thread315, .. ErrStackItem, .. Frame314, .. Code314, .. PyObject, .. Type315, .. HeapType, .. Tuple, .. List, .. Set, .. Dict,
            .. Float, .. Long, .. Bytes, .. Unicode315, .. Gc315, .. Gen, .. LlistNode, .. Debugger],
        _ => null,
    };

    /// <summary>Bytes to read to parse the largest known struct.</summary>
    public const int MaxSize = 24 + 8 * 112;

    private readonly Dictionary<string, ulong> _fields;

    private DebugOffsets(PythonVersion version, bool freeThreaded, Dictionary<string, ulong> fields)
    {
        Version = version;
        FreeThreaded = freeThreaded;
        _fields = fields;
    }

    public PythonVersion Version { get; }
    public bool FreeThreaded { get; }
    /// <summary>Every field by "group.field" name.</summary>
    public IReadOnlyDictionary<string, ulong> Fields => _fields;

    public ulong this[string name] => _fields.TryGetValue(name, out var v) ? v
        : throw new KeyNotFoundException($"_Py_DebugOffsets of CPython {Version} has no field {name}");

    /// <summary>True when <paramref name="data"/> starts with the cookie.</summary>
    public static bool HasCookie(ReadOnlySpan<byte> data) => data.Length >= 8 && data[..8].SequenceEqual(Cookie);

    /// <summary>Parses the struct from the start of _PyRuntime; throws <see cref="UnsupportedRuntimeException"/> for an unknown minor version.</summary>
    public static DebugOffsets Parse(ReadOnlySpan<byte> data, string where)
    {
        if (!HasCookie(data) || data.Length < 24)
            throw new UnsupportedRuntimeException($"{where}: _PyRuntime does not start with the _Py_DebugOffsets cookie \"xdebugpy\"");
        ulong hex = BinaryPrimitives.ReadUInt64LittleEndian(data[8..]);
        if (!PythonVersion.IsPlausibleHex(hex))
            throw new UnsupportedRuntimeException($"{where}: _Py_DebugOffsets holds an implausible version 0x{hex:x}");
        var version = PythonVersion.FromHex(hex);
        bool freeThreaded = BinaryPrimitives.ReadUInt64LittleEndian(data[16..]) != 0;
        var names = version.Major == 3 ? FieldsOf(version.Minor) : null;
        if (names is null)
            throw new UnsupportedRuntimeException($"{where}: CPython {version} is newer than pyprobe knows (3.{CPythonFacts.OldestMinor}–3.{CPythonFacts.NewestMinor}); its _Py_DebugOffsets layout is unknown");
        if (data.Length < 24 + 8 * names.Count)
            throw new UnsupportedRuntimeException($"{where}: _Py_DebugOffsets is cut short ({data.Length} bytes)");
        var fields = new Dictionary<string, ulong>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
            fields[names[i]] = BinaryPrimitives.ReadUInt64LittleEndian(data[(24 + 8 * i)..]);
        return new DebugOffsets(version, freeThreaded, fields);
    }

    /// <summary>The stack-walking layout these offsets describe (GIL builds).</summary>
    public RuntimeLayout ToLayout()
    {
        int F(string name) => checked((int)this[name]);
        int? Maybe(string name) => _fields.TryGetValue(name, out var v) ? checked((int)v) : null;
        int minor = Version.Minor;
        var str = new StrLayout(AsciiData: F("unicode_object.asciiobject_size"),
            // 3.13/3.14 do not publish sizeof(PyCompactUnicodeObject); it is 56 on both (cpython.md §3.4).
            CompactData: Maybe("unicode_object.compactunicodeobject_size") ?? 56);
        return new RuntimeLayout(
            new RuntimeStateLayout(InterpretersHead: F("runtime_state.interpreters_head"), GilHolder: null, TssKey: null),
            new InterpreterLayout(Next: F("interpreter_state.next"), ThreadsHead: F("interpreter_state.threads_head"), Modules: F("interpreter_state.imports_modules"),
                // The GIL fields are published for the interpreter's own _gil: inside _gil_runtime_state they lie where they lie there.
                CevalGil: F("interpreter_state.ceval_gil"),
                GilLastHolder: F("interpreter_state.gil_runtime_state_holder") - F("interpreter_state.gil_runtime_state"),
                GilLocked: F("interpreter_state.gil_runtime_state_locked") - F("interpreter_state.gil_runtime_state")),
            new ThreadStateLayout(Next: F("thread_state.next"), ThreadId: F("thread_state.thread_id"), NativeThreadId: F("thread_state.native_thread_id"),
                TopFrame: F("thread_state.current_frame"), CFrameCurrentFrame: null, BaseFrame: Maybe("thread_state.base_frame"),
                Interp: F("thread_state.interp")),
            new FrameLayout(Code: F("interpreter_frame.executable"), Previous: F("interpreter_frame.previous"), Position: F("interpreter_frame.instr_ptr"),
                PositionKind: InstructionPosition.InstructionPointer, Owner: F("interpreter_frame.owner"), IsEntry: null,
                // 3.13 FRAME_OWNED_BY_CSTACK = 3; 3.14 INTERPRETER = 3, CSTACK = 4; 3.15 INTERPRETER = 3.
                FirstNonFrameOwner: 3,
                // 3.14+: f_executable is a _PyStackRef whose low 2 bits are tags (Py_TAG_BITS, GIL build).
                CodeTagMask: minor >= 14 ? 3UL : 0UL,
                NoneCodeIsEntry: true, Size: F("interpreter_frame.size"), LocalsPlus: F("interpreter_frame.localsplus")),
            new CodeLayout(Filename: F("code_object.filename"), Name: F("code_object.name"), Qualname: F("code_object.qualname"),
                FirstLineNo: F("code_object.firstlineno"), LineTable: F("code_object.linetable"), LineTableFormat: LineTableFormat.Locations311,
                CodeAdaptive: F("code_object.co_code_adaptive"), CodeBytes: null,
                LocalNames: F("code_object.localsplusnames"), LocalKinds: F("code_object.localspluskinds"),
                // The offsets name co_argcount only; since 3.12 co_flags comes right before it and co_posonlyargcount,
                // co_kwonlyargcount after it, ints all.
                ArgCount: F("code_object.argcount"), KwOnlyArgCount: F("code_object.argcount") + 8, Flags: F("code_object.argcount") - 4),
            str,
            new PyObjectLayout(TupleItems: F("tuple_object.ob_item"), AsciiData: str.AsciiData, CompactData: str.CompactData, LongTag: true));
    }

}
