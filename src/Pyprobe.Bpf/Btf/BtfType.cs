namespace Pyprobe.Bpf.Btf;

/// <summary>One struct/union member: its name, type id and bit offset from the start of the enclosing type.</summary>
public readonly record struct BtfMember(string Name, int TypeId, int BitOffset);

/// <summary>
/// One entry of the type section. <see cref="SizeOrType"/> is the byte size for ints, structs, unions, enums and
/// floats, and the referenced type id for pointers, typedefs, qualifiers, functions and variables.
/// </summary>
public sealed record BtfType(int Id, BtfKind Kind, string Name, int SizeOrType, IReadOnlyList<BtfMember> Members)
{
    public bool IsComposite => Kind is BtfKind.Struct or BtfKind.Union;

    /// <summary>Kinds that only rename or qualify another type; member lookups look through them.</summary>
    public bool IsAlias => Kind is BtfKind.Typedef or BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict or BtfKind.TypeTag;
}
