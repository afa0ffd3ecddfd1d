namespace Pyprobe.Usdt.Elf;

// Plain immutable copies of the ELF facts the tracer needs, read by ElfHeaderReader and ElfSymbolReader,
// so callers never hold an open file.

public enum ElfFileKind
{
    /// <summary>ET_EXEC: non-PIE executable, vaddrs are absolute.</summary>
    Executable,
    /// <summary>ET_DYN: PIE executable or shared library, loaded at a bias.</summary>
    SharedObject,
}

/// <summary>A PT_LOAD program header.</summary>
public sealed record ElfLoadSegment(
    ulong VirtualAddress,
    ulong MemorySize,
    ulong FileOffset,
    ulong FileSize,
    bool Readable,
    bool Writable,
    bool Executable)
{
    public bool Contains(ulong vaddr) => vaddr >= VirtualAddress && vaddr - VirtualAddress < MemorySize;
}

/// <summary>A section header; <see cref="Address"/> is sh_addr (0 for non-allocated sections).</summary>
public sealed record ElfSection(string Name, uint Type, ulong Address, ulong FileOffset, ulong Size, bool Allocated)
{
    /// <summary>SHT_NOBITS (.bss): occupies no bytes in the file.</summary>
    public bool HasFileData => Type != 8;
}

public enum ElfSymbolTableKind { Symtab, Dynsym }

/// <summary>A named symbol from .symtab or .dynsym.</summary>
public sealed record ElfSymbol(string Name, ulong Value, ulong Size, bool IsObject, bool IsFunction, bool IsGlobal, bool IsDefined, ElfSymbolTableKind Table);
