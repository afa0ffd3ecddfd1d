namespace Pyprobe.Python.Runtime;

/// <summary>
/// Object layouts of one CPython version (x86-64, GIL build), checked against the cached Debian
/// interpreters with ctypes.string_at (3.9.2, 3.11.2, 3.13.5, 3.14.10, 3.15.2) and against the
/// pyenv builds' headers (RuntimeLayoutHeaderTests).
/// </summary>
/// <param name="TupleItems">offsetof(PyTupleObject, ob_item): 24, 32 from 3.14 (ob_hash cache).</param>
/// <param name="AsciiData">sizeof(PyASCIIObject): 48 up to 3.11 (wstr), 40 from 3.12.</param>
/// <param name="CompactData">sizeof(PyCompactUnicodeObject): 72 up to 3.11, 56 from 3.12.</param>
/// <param name="LongTag">3.12+: ob_size replaced by lv_tag (digits = tag >> 3, sign = tag &amp; 3, 2 = negative).</param>
public sealed record PyObjectLayout(int TupleItems, int AsciiData, int CompactData, bool LongTag)
{
    public const int ObType = 8;
    public const int VarSize = 16;          // ob_size / str length / lv_tag
    public const int UnicodeState = 32;     // PyASCIIObject.state (interned:2, kind:3, compact:1, ascii:1)
    public const int LongDigits = 24;       // ob_digit[] (30-bit digits in u32)
    public const int BytesData = 32;        // PyBytesObject.ob_sval
    public const int FloatValue = 16;       // PyFloatObject.ob_fval
    public const int ListItems = 24;        // PyListObject.ob_item (PyObject **)
    public const int TypeName = 24;         // PyTypeObject.tp_name
    public const int TypeBase = 256;        // PyTypeObject.tp_base
}
