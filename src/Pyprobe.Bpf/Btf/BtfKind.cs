namespace Pyprobe.Bpf.Btf;

/// <summary>BTF_KIND_* from the kernel's UAPI btf.h (bits 24–28 of btf_type.info); ABI, never renumbered.</summary>
public enum BtfKind
{
    Unknown = 0,
    Int = 1,
    Pointer = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Forward = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Function = 12,
    FunctionPrototype = 13,
    Variable = 14,
    DataSection = 15,
    Float = 16,
    DeclarationTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}
