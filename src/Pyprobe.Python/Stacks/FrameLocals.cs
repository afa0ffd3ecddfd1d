using Pyprobe.Python.Objects;

namespace Pyprobe.Python.Stacks;

/// <summary>A local variable of a frame: its name, a short text of its value (<see cref="ValueRepr"/>), and whether it is one of the function's parameters.</summary>
public sealed record LocalVariable(string Name, string Value, bool IsArgument = false);

/// <summary>
/// The local variables of a frame, as <c>py-spy dump --locals</c> shows them: each named slot of the frame that holds a
/// value, arguments first (told apart: positional, keyword-only, *args, **kwargs), a cell's content for a variable a closure
/// shares; unset ones (not assigned yet, or deleted) are left out. Read only.
/// </summary>
public sealed class FrameLocals(CPythonProcess process)
{
    private const int MaxLocals = 256;
    // co_localspluskinds (3.11+): CO_FAST_HIDDEN (a comprehension's inlined variable, 3.12+), CO_FAST_CELL, CO_FAST_FREE.
    private const byte HiddenKind = 0x10, CellKind = 0x40, FreeKind = 0x80;
    // PyCellObject.ob_ref
    private const int CellContents = 16;
    // co_flags: the function takes *args, **kwargs (their slots follow the named parameters).
    private const int VarArgsFlag = 0x4, VarKeywordsFlag = 0x8;

    private readonly ObjectReader _objects = new(process);
    private readonly ValueRepr _values = new(process);
    private RuntimeLayout L => process.Layout;
    private ProcessMemory M => process.Memory;

    /// <summary>The locals of the frame at <paramref name="frame"/> running <paramref name="code"/>; empty when they cannot be read.</summary>
    public IReadOnlyList<LocalVariable> Read(ulong frame, ulong code)
    {
        var result = new List<LocalVariable>();
        try
        {
            var c = L.Code;
            // 3.11+: one tuple names every slot, and each slot's kind says whether it holds a cell. Before, the locals,
            // cells and free variables are named by three tuples, in that order.
            var groups = c.LocalKinds is not null ? [(c.LocalNames, false)]
                : new List<(int Names, bool Cells)> { (c.LocalNames, false), (c.CellNames!.Value, true), (c.FreeNames!.Value, true) };
            // The parameters are the first slots; before 3.11 one a closure shares is moved to its cell, found by name.
            var flags = M.ReadI32(code + (ulong)c.Flags);
            var parameters = M.ReadI32(code + (ulong)c.ArgCount) + M.ReadI32(code + (ulong)c.KwOnlyArgCount)
                + ((flags & VarArgsFlag) != 0 ? 1 : 0) + ((flags & VarKeywordsFlag) != 0 ? 1 : 0);
            var parameterNames = new HashSet<string>();
            int slot = 0;
            foreach (var (namesOffset, cells) in groups)
            {
                ulong names = M.ReadU64(code + (ulong)namesOffset);
                long count = names == 0 ? 0 : (long)M.ReadU64(names + PyObjectLayout.VarSize);
                if (count < 0 || slot + count > MaxLocals) return result;
                if (count == 0) continue;
                var kinds = c.LocalKinds is int k ? KindsOf(M.ReadU64(code + (ulong)k), count) : null;
                var values = M.ReadBytes(frame + (ulong)(L.Frame.LocalsPlus + 8 * slot), (int)count * 8);
                var nameSlots = M.ReadBytes(names + (ulong)L.Objects.TupleItems, (int)count * 8);
                for (int i = 0; i < count; i++)
                {
                    byte kind = kinds?[i] ?? (cells ? CellKind : (byte)0);
                    if ((kind & HiddenKind) != 0) continue;
                    string Name() => _objects.Str(BinaryPrimitives.ReadUInt64LittleEndian(nameSlots.AsSpan(8 * i))) ?? $"<slot {slot + i}>";
                    var parameter = slot + i < parameters;
                    var name = parameter ? Name() : null; // an emptied parameter's name is still needed for its cell
                    if (parameter) parameterNames.Add(name!);
                    if (ValueOf(BinaryPrimitives.ReadUInt64LittleEndian(values.AsSpan(8 * i)), kind) is not ulong value) continue;
                    name ??= Name();
                    result.Add(new LocalVariable(name, Describe(value), parameter || (cells && parameterNames.Contains(name))));
                }
                slot += (int)count;
            }
        }
        catch (ProcessMemoryException) { } // the frame moved on while it was read: what was read so far
        return result;
    }

    /// <summary>The object a slot holds (a cell's content for a shared variable), or null when it holds none.</summary>
    private ulong? ValueOf(ulong slot, byte kind)
    {
        // 3.14+: a _PyStackRef; both tag bits set is a tagged int the interpreter keeps for itself, not an object.
        if (L.Frame.CodeTagMask != 0 && (slot & L.Frame.CodeTagMask) == L.Frame.CodeTagMask) return null;
        ulong value = slot & ~L.Frame.CodeTagMask;
        if (value == 0) return null;
        if ((kind & (CellKind | FreeKind)) != 0 && _objects.IsOfType(value, "cell"))
            value = M.ReadU64(value + CellContents);
        return value == 0 ? null : value;
    }

    private string Describe(ulong value)
    {
        try { return _values.Of(value); }
        catch (ProcessMemoryException) { return $"<unreadable at 0x{value:x}>"; }
    }

    private byte[]? KindsOf(ulong bytesObject, long count)
    {
        if (bytesObject == 0 || (long)M.ReadU64(bytesObject + PyObjectLayout.VarSize) < count) return null;
        return M.ReadBytes(bytesObject + PyObjectLayout.BytesData, (int)count);
    }
}
