namespace Pyprobe.Python.Audit;

/// <summary>
/// The fixed-size record the audit program writes, shared by the generator and the decoder.
/// <code>
///   0  u64 timestamp (CLOCK_MONOTONIC)      8 u32 tgid   12 u32 tid
///  16  u32 attach cookie                   20 u32 event name length (without NUL)
///  24  i64 argument tuple size (ob_size), -1 when the tuple was not read
///  32  u32 flags (bit 0: event name cut)   36 u32 0
///  40  event name bytes [EventCapacity]
///  SlotsOffset: 16 value slots
///        +0 u8 kind (<see cref="AuditValueKind"/>), +1 u8 flags (bit 0 cut; bits 1-3 unicode kind), +2 u16 data length
///        +8 i64 value (int value, size, length, float bits), +16 data bytes
///      slots 0-3: the tuple's first items (TopCapacity data bytes each);
///      slots 4+3i .. 6+3i: the first 3 items of item i when it is a tuple or list (NestedCapacity bytes each).
/// </code>
/// </summary>
public static class AuditLayout
{
    public const int TimestampOffset = 0;
    public const int TgidOffset = 8;
    public const int TidOffset = 12;
    public const int CookieOffset = 16;
    public const int EventLengthOffset = 20;
    public const int TupleSizeOffset = 24;
    public const int FlagsOffset = 32;
    public const int EventOffset = 40;
    public const int EventCapacity = 256;
    public const int SlotsOffset = EventOffset + EventCapacity;

    /// <summary>Items of the argument tuple decoded (the rest are counted only).</summary>
    public const int TopSlots = 4;
    /// <summary>Items decoded of a tuple or list that is itself an argument.</summary>
    public const int NestedPerSlot = 3;
    public const int SlotCount = TopSlots + TopSlots * NestedPerSlot;
    public const int TopCapacity = 256;
    public const int NestedCapacity = 64;
    public const int SlotHeader = 16;

    public const int SlotKindOffset = 0;
    public const int SlotFlagsOffset = 1;
    public const int SlotLengthOffset = 2;
    public const int SlotValueOffset = 8;
    public const int SlotDataOffset = 16;

    public static int Capacity(int slot) => slot < TopSlots ? TopCapacity : NestedCapacity;

    public static int SlotOffset(int slot) => slot < TopSlots
        ? SlotsOffset + slot * (SlotHeader + TopCapacity)
        : SlotsOffset + TopSlots * (SlotHeader + TopCapacity) + (slot - TopSlots) * (SlotHeader + NestedCapacity);

    public static int NestedSlot(int parent, int item) => TopSlots + parent * NestedPerSlot + item;

    public static int RecordSize => SlotOffset(SlotCount);
}

/// <summary>What a decoded argument is.</summary>
public enum AuditValueKind : byte
{
    /// <summary>Not decoded (beyond the tuple's size, or decoding is off for this version).</summary>
    Absent = 0,
    None = 1,
    Int = 2,
    /// <summary>An int of more than two 30-bit digits; the value is the signed digit count.</summary>
    BigInt = 3,
    /// <summary>A compact str: ASCII bytes, or UCS-1/2/4 code units (flags bits 1-3 give the width).</summary>
    Str = 4,
    /// <summary>A str in a layout that cannot be copied safely (legacy, not compact).</summary>
    StrUndecodable = 5,
    Bytes = 6,
    Tuple = 7,
    List = 8,
    Float = 9,
    Bool = 10,
    /// <summary>Any other type: the data is its type's tp_name.</summary>
    Other = 11,
    /// <summary>The object's memory could not be read.</summary>
    Unreadable = 12,
}

/// <summary>
/// Object layouts of one CPython version (x86-64, GIL build), checked against the cached Debian
/// interpreters with ctypes.string_at (3.9.2, 3.11.2, 3.13.5, 3.14.10, 3.15.2) and CPython's headers.
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

    /// <summary>The layout for CPython 3.<paramref name="minor"/>, or null when pyprobe does not know it (args are then not decoded).</summary>
    public static PyObjectLayout? For(int major, int minor) => (major, minor) switch
    {
        (3, >= 8 and <= 11) => new PyObjectLayout(24, 48, 72, false),
        (3, 12 or 13) => new PyObjectLayout(24, 40, 56, true),
        (3, 14 or 15) => new PyObjectLayout(32, 40, 56, true),
        _ => null,
    };
}
