using Pyprobe.Python.Objects;

namespace Pyprobe.Python.Stacks;

/// <summary>What user space needs of a code object to name a frame and find its line.</summary>
/// <param name="Name">co_qualname where the version has it (3.11+), else co_name.</param>
public sealed record CodeObject(string Name, string File, int FirstLine, byte[] LineTable, LineTableFormat Format)
{
    /// <summary>
    /// The line at a frame position as the runtime keeps it: f_lasti in bytes (≤ 3.9) or code units (3.10), or
    /// the byte offset of the instruction pointer in co_code_adaptive (3.11+). Before the first instruction, the
    /// first line.
    /// </summary>
    public int LineAt(InstructionPosition kind, uint position)
    {
        long offset = kind == InstructionPosition.LastiCodeUnits ? (long)(int)position * 2 : (int)position;
        if (offset < 0 || LineTable.Length == 0) return FirstLine;
        var line = Stacks.LineTable.LineOf(Format, LineTable, FirstLine, (int)offset);
        return line < 0 ? FirstLine : line;
    }
}

/// <summary>Reads code objects and strings out of a process with the runtime model's layouts.</summary>
public sealed class CodeObjectReader(CPythonProcess process)
{
    private const int MaxStringLength = 4096;
    private const int MaxLineTable = 1 << 20;
    private readonly ulong? _codeType = process.Binary.Symbols.CodeType is ulong type ? process.Address(type) : null;

    private RuntimeLayout L => process.Layout;
    private ProcessMemory M => process.Memory;

    /// <summary>The code object at <paramref name="address"/>, or null when it is not (or no longer) one.</summary>
    public CodeObject? TryRead(ulong address) => TryRead(address, M);

    /// <summary>
    /// The code object at <paramref name="address"/> as <paramref name="memory"/> holds it (the live process, or copies the
    /// kernel made while it ran), or null when it is not one there or a part of it cannot be read.
    /// </summary>
    public CodeObject? TryRead(ulong address, IMemoryReader memory)
    {
        try
        {
            if (_codeType is ulong type && memory.ReadU64(address + PyObjectLayout.ObType) != type) return null;
            var c = L.Code;
            var name = ReadStr(memory.ReadU64(address + (ulong)(c.Qualname ?? c.Name)), memory);
            var file = ReadStr(memory.ReadU64(address + (ulong)c.Filename), memory);
            var firstLine = memory.ReadI32(address + (ulong)c.FirstLineNo);
            var table = memory.ReadU64(address + (ulong)c.LineTable);
            var size = (long)memory.ReadU64(table + PyObjectLayout.VarSize);
            var bytes = size is > 0 and <= MaxLineTable ? memory.ReadBytes(table + PyObjectLayout.BytesData, (int)size) : [];
            return new CodeObject(name, file, firstLine, bytes, c.LineTableFormat);
        }
        catch (ProcessMemoryException)
        {
            return null;
        }
    }

    /// <summary>A compact str's text (ASCII, or UCS-1/2/4 code units); "?" for other layouts.</summary>
    public string ReadStr(ulong str) => ReadStr(str, M);

    private string ReadStr(ulong str, IMemoryReader memory) => ObjectReader.ReadStr(memory, L.Str, str, MaxStringLength) ?? "?";
}
