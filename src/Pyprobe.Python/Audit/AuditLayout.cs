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
