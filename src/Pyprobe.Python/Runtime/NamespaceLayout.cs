namespace Pyprobe.Python.Runtime;

/// <summary>How a dict's keys object lays out its hash indices and entries.</summary>
public enum DictKeysForm
{
    /// <summary>3.8–3.10: dk_size (entries), dk_nentries at 32, indices at 40 (1/2/4/8 bytes each by size), entries of (hash, key, value).</summary>
    SizedIndices,
    /// <summary>3.11+: log2 of the size and of the index bytes, dk_kind (0 general: (hash, key, value); str-keyed: (key, value)).</summary>
    Log2Indices,
}

/// <summary>Where an instance of a Python class keeps its attributes.</summary>
public enum InstanceDictForm
{
    /// <summary>≤3.10: a dict at the type's tp_dictoffset (split: its values apart, its keys shared by the class).</summary>
    DictOffset,
    /// <summary>3.11: managed: the dict at obj − 24, or (none made yet) a values array at obj − 32 over the class's cached keys.</summary>
    ManagedDictOrValues,
    /// <summary>3.12: one word at obj − 24: the dict, or (low bit set) the values array's address − 1.</summary>
    TaggedDictOrValues,
    /// <summary>3.13+: the dict at obj − 24, or the values inline after the object (at tp_basicsize), valid while no dict was made.</summary>
    InlineValues,
}

/// <summary>
/// What reading names out of a process needs beyond the stack walk: dicts (sys.modules, a module's globals) and an
/// instance's attributes (a <c>threading.Thread</c>'s <c>_name</c>). Offsets printed by offsetof() against the pyenv
/// builds' headers (RuntimeLayoutHeaderTests) and read from the Debian 3.13–3.15 binaries' <c>_Py_DebugOffsets</c>.
/// </summary>
/// <param name="HeapTypeCachedKeys">offsetof(PyHeapTypeObject, ht_cached_keys): sizeof(PyTypeObject) + 464 (3.11+), the keys a class's instances share.</param>
/// <param name="SplitValues">Where the values start in what a split dict's ma_values points at (3.13+: after a 4-byte header padded to 8).</param>
public sealed record NamespaceLayout(DictKeysForm Keys, InstanceDictForm Instances, int? HeapTypeCachedKeys, int SplitValues)
{
    public const int ModuleDict = 16;          // PyModuleObject.md_dict
    public const int DictKeys = 32;            // PyDictObject.ma_keys
    public const int DictValues = 40;          // PyDictObject.ma_values
    public const int TypeBasicSize = 32;       // PyTypeObject.tp_basicsize
    public const int TypeFlags = 168;          // PyTypeObject.tp_flags
    public const int TypeDictOffset = 288;     // PyTypeObject.tp_dictoffset
    public const int ManagedDict = -24;        // the managed dict's word before the object (3.11+)
    public const int ManagedValues = -32;      // 3.11's values pointer before it
    public const int InlineValuesValid = 3;    // PyDictValues.valid (3.13+)
    public const ulong ManagedDictFlag = 1 << 4;   // Py_TPFLAGS_MANAGED_DICT (3.11+)
    public const ulong InlineValuesFlag = 1 << 2;  // Py_TPFLAGS_INLINE_VALUES (3.13+)
}
