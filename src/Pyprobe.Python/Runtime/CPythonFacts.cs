using Pyprobe.Python.Versions;

namespace Pyprobe.Python.Runtime;

/// <summary>
/// What is known about a CPython version from its number alone (no binary needed): which probes
/// fire and the notes to show, object layouts, and the offset table where the version has one.
/// The binary-specific part (symbols, TLS, hook offset, _Py_DebugOffsets) is <see cref="CPythonBinary"/>.
/// Every CPython version comparison of pyprobe lives in this folder.
/// </summary>
public sealed class CPythonFacts
{
    public const int OldestMinor = 8;
    public const int NewestMinor = 15;

    private CPythonFacts(PythonVersion version) => Version = version;

    public PythonVersion Version { get; }
    private int Minor => Version.Minor;

    /// <summary>A version string found in a binary that can be a CPython 3 release's (3.6 and later, with a micro number).</summary>
    public static bool IsPlausibleRelease(PythonVersion version) => version.Major == 3 && version.Minor >= 6 && version.Micro is not null;

    /// <summary>The facts for 3.8–3.15, or null for a version pyprobe does not know.</summary>
    public static CPythonFacts? For(PythonVersion? version) =>
        version is { Major: 3, Minor: >= OldestMinor and <= NewestMinor } ? new CPythonFacts(version) : null;

    /// <summary>Whether <paramref name="probe"/> fires on CPython major.minor (works for any version, known or not).</summary>
    public static ProbeSupport ProbeSupport(string probe, int major, int minor) => ProbeAvailability.Support(probe, major, minor);

    public ProbeSupport Probe(string probe) => ProbeAvailability.Support(probe, Version.Major, Minor);

    /// <summary>3.11: function__entry fires only while tracing is on, i.e. when the line semaphore is raised (cpython.md §1.4).</summary>
    public bool FunctionEntryNeedsLineSemaphore => Minor == 11;

    /// <summary>3.15+: function probes restored with caveats (unbalanced for generators, hidden by the JIT) worth a note.</summary>
    public bool FunctionProbesRestoredWithCaveats => Minor >= 15;

    /// <summary>Up to 3.11 the runtime records which thread state holds the GIL.</summary>
    public bool RecordsGilHolder => Minor <= 11;

    /// <summary>3.13+ publish their layout in _Py_DebugOffsets at the start of _PyRuntime.</summary>
    public bool HasDebugOffsets => Minor >= 13;

    /// <summary>3.12+ keep the attached thread state in the C11 thread-local _Py_tss_tstate.</summary>
    public bool HasThreadLocalThreadState => Minor >= 12;

    /// <summary>3.11+ have a frame-evaluation hook worth setting from outside (interp->eval_frame, cpython.md §7).</summary>
    public bool HasEvalFrameHook => Minor >= 11;

    /// <summary>
    /// The JIT (3.14+, when built in and on) keeps inlining calls in traces compiled before the hook was written raw:
    /// only the public setter invalidates them (cpython.md §7).
    /// </summary>
    public bool JitMayInlineAfterHookWrite => Minor >= 14;

    /// <summary>
    /// 3.13's CALL_ALLOC_AND_ENTER_INIT runs a specialised class call's <c>__init__</c> inside the running activation
    /// without looking at the eval-frame hook (every other inlining path checks it; 3.14 added the check here), so those
    /// activations need probes of their own (<see cref="EvalFrame.InlineInitSites"/>); null where none is needed.
    /// </summary>
    public InlineInitLayout? InlineInit => Minor == 13 ? new InlineInitLayout(HeapTypeInit: 0x398, FunctionCode: 0x30) : null;

    /// <summary>_PyEval_EvalFrameDefault takes the frame in rdi (3.8: (frame, throwflag)) or rsi (3.9+: (tstate, frame, throwflag)).</summary>
    public bool EvalFrameTakesFrameFirst => Minor == 8;

    /// <summary>Calling a generator function runs its frame once to create it (3.11+): an activation that is no call.</summary>
    public bool GeneratorCreationRunsFrame => Minor >= 11;

    /// <summary>Where a build has them, the function probes fire for every call without help (3.8–3.10, 3.15+).</summary>
    public bool FunctionProbesFireForEveryCall => Minor <= 10 || Minor >= 15;

    public StrLayout Str => Minor <= 11 ? new StrLayout(AsciiData: 48, CompactData: 72) : new StrLayout(AsciiData: 40, CompactData: 56);

    /// <summary>
    /// PyCodeObject.co_flags: after the var-object header and co_consts, co_names, co_exceptiontable from 3.11; after
    /// the object header and five ints (argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize) before.
    /// </summary>
    public int CodeFlagsOffset => Minor >= 11 ? EvalFrame.CodeObjectFields.FlagsOffset : 36;

    /// <summary>Object layouts (audit argument decoding).</summary>
    public PyObjectLayout Objects => Minor switch
    {
        <= 11 => new PyObjectLayout(TupleItems: 24, AsciiData: 48, CompactData: 72, LongTag: false),
        12 or 13 => new PyObjectLayout(TupleItems: 24, AsciiData: 40, CompactData: 56, LongTag: true),
        _ => new PyObjectLayout(TupleItems: 32, AsciiData: 40, CompactData: 56, LongTag: true),
    };

    /// <summary>Dicts and instance attributes (thread names).</summary>
    public NamespaceLayout Namespaces => Minor switch
    {
        <= 10 => new NamespaceLayout(DictKeysForm.SizedIndices, InstanceDictForm.DictOffset, HeapTypeCachedKeys: null, SplitValues: 0),
        11 => new NamespaceLayout(DictKeysForm.Log2Indices, InstanceDictForm.ManagedDictOrValues, HeapTypeCachedKeys: 872, SplitValues: 0),
        12 => new NamespaceLayout(DictKeysForm.Log2Indices, InstanceDictForm.TaggedDictOrValues, HeapTypeCachedKeys: 880, SplitValues: 0),
        13 or 14 => new NamespaceLayout(DictKeysForm.Log2Indices, InstanceDictForm.InlineValues, HeapTypeCachedKeys: 880, SplitValues: 8),
        _ => new NamespaceLayout(DictKeysForm.Log2Indices, InstanceDictForm.InlineValues, HeapTypeCachedKeys: 888, SplitValues: 8),
    };

    /// <summary>The offset table of 3.8–3.12 (null from 3.13: read _Py_DebugOffsets instead).</summary>
    public RuntimeLayout? TableLayout => LayoutTables.For(Minor);
}
