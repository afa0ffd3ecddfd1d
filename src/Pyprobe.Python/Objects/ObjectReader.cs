using System.Numerics;
using System.Text;

namespace Pyprobe.Python.Objects;

/// <summary>
/// Reads plain Python objects out of a process's memory with the version's layouts: a dict's entries, an instance's
/// attribute, a str, a small int. Read only and bounded; memory that does not hold what is expected gives null (or
/// no entries), and a read the process refuses throws <see cref="ProcessMemoryException"/>.
/// </summary>
/// <param name="rememberTypes">Keep each type's names once read, for a reader that lives one dump: in a long-lived one a
/// freed class's address could come back as another class.</param>
public sealed class ObjectReader(IMemoryReader memory, CPythonFacts facts, StrLayout str, bool rememberTypes = false)
{
    private const long MaxEntries = 1 << 16;
    private const int MaxNameLength = 256;
    private readonly NamespaceLayout _layout = facts.Namespaces;

    public ObjectReader(CPythonProcess process, bool rememberTypes = false) : this(process.Memory, process.Binary.Facts, process.Layout.Str, rememberTypes) { }

    /// <summary>The (key, value) object pairs of the dict at <paramref name="dict"/>, in insertion order.</summary>
    public List<(ulong Key, ulong Value)> DictEntries(ulong dict) =>
        Entries(memory.ReadU64(dict + NamespaceLayout.DictKeys), memory.ReadU64(dict + NamespaceLayout.DictValues));

    /// <summary>The value under the str key <paramref name="name"/> in the dict at <paramref name="dict"/>, or null.</summary>
    public ulong? DictItem(ulong dict, string name) => Find(DictEntries(dict), name);

    /// <summary>
    /// The globals dict of the module <paramref name="name"/> in an interpreter's <c>sys.modules</c>
    /// (<paramref name="modulesOffset"/>: where the interpreter state keeps that dict), or null where it is not imported (yet).
    /// </summary>
    public ulong? ModuleGlobals(ulong interpreter, int modulesOffset, string name)
    {
        ulong modules = memory.ReadU64(interpreter + (ulong)modulesOffset);
        if (modules == 0 || DictItem(modules, name) is not ulong module) return null;
        ulong globals = memory.ReadU64(module + NamespaceLayout.ModuleDict);
        return globals == 0 ? null : globals;
    }

    /// <summary>
    /// The attribute <paramref name="name"/> of the instance at <paramref name="instance"/>, from its own dict or values (not
    /// its class's), or null when it has none.
    /// </summary>
    public ulong? Attribute(ulong instance, string name)
    {
        ulong type = memory.ReadU64(instance + PyObjectLayout.ObType);
        ulong flags = memory.ReadU64(type + NamespaceLayout.TypeFlags);
        bool managed = _layout.Instances != InstanceDictForm.DictOffset && (flags & NamespaceLayout.ManagedDictFlag) != 0;
        if (!managed)
        {
            long offset = (long)memory.ReadU64(type + NamespaceLayout.TypeDictOffset);
            if (offset <= 0) return null; // no dict, or one placed from the end of a variable-sized object
            ulong dict = memory.ReadU64(instance + (ulong)offset);
            return dict == 0 ? null : DictItem(dict, name);
        }
        ulong word = memory.ReadU64(Offset(instance, NamespaceLayout.ManagedDict));
        switch (_layout.Instances)
        {
            case InstanceDictForm.ManagedDictOrValues:
                if (word != 0) return DictItem(word, name);
                ulong values = memory.ReadU64(Offset(instance, NamespaceLayout.ManagedValues));
                return values == 0 ? null : SharedKeyItem(type, values, name);
            case InstanceDictForm.TaggedDictOrValues:
                if (word == 0) return null;
                return (word & 1) == 0 ? DictItem(word, name) : SharedKeyItem(type, word + 1, name); // values are kept as their address − 1
            default:
                if (word != 0) return DictItem(word, name);
                if ((flags & NamespaceLayout.InlineValuesFlag) == 0) return null;
                ulong inline = instance + memory.ReadU64(type + NamespaceLayout.TypeBasicSize);
                Span<byte> valid = stackalloc byte[1];
                memory.Read(inline + NamespaceLayout.InlineValuesValid, valid);
                return valid[0] == 0 ? null : SharedKeyItem(type, inline, name);
        }
    }

    /// <summary>The text of a compact str, or null for anything else (or one longer than <paramref name="maxLength"/>).</summary>
    public string? Str(ulong address, int maxLength = MaxNameLength) => ReadStr(memory, str, address, maxLength);

    /// <summary>
    /// The text of the compact str at <paramref name="address"/> (ASCII, or UCS-1/2/4 code units), or null for other layouts
    /// or one longer than <paramref name="maxLength"/>; only its first <paramref name="maxRead"/> characters where given.
    /// </summary>
    public static string? ReadStr(IMemoryReader memory, StrLayout str, ulong address, int maxLength, int maxRead = int.MaxValue)
    {
        if (address == 0) return null;
        uint state = memory.ReadU32(address + (ulong)str.State);
        long length = (long)memory.ReadU64(address + (ulong)str.Length);
        if ((state & StrLayout.CompactBit) == 0 || length < 0 || length > maxLength) return null;
        length = Math.Min(length, maxRead);
        if ((state & StrLayout.AsciiBit) != 0)
            return Encoding.ASCII.GetString(memory.ReadBytes(address + (ulong)str.AsciiData, (int)length));
        int kind = (int)((state >> StrLayout.KindShift) & StrLayout.KindMask);
        var data = memory.ReadBytes(address + (ulong)str.CompactData, (int)length * kind);
        return kind switch
        {
            1 => Encoding.Latin1.GetString(data),
            2 => Encoding.Unicode.GetString(data),
            4 => Encoding.UTF32.GetString(data),
            _ => null,
        };
    }

    /// <summary>The keys of the set at <paramref name="set"/> (PySetObject: mask at 32, table at 40, 16-byte entries of key and hash), dummies included: check each one's type.</summary>
    public List<ulong> SetItems(ulong set)
    {
        long mask = (long)memory.ReadU64(set + 32);
        ulong table = memory.ReadU64(set + 40);
        if (mask < 0 || mask >= MaxEntries * 4 || table == 0) return [];
        var bytes = memory.ReadBytes(table, (int)(mask + 1) * 16);
        var items = new List<ulong>();
        for (int i = 0; i <= mask; i++)
            if (BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16 * i)) is var key and not 0) items.Add(key);
        return items;
    }

    /// <summary>The items of the list at <paramref name="list"/>.</summary>
    public List<ulong> ListItems(ulong list)
    {
        long size = (long)memory.ReadU64(list + PyObjectLayout.VarSize);
        ulong items = memory.ReadU64(list + PyObjectLayout.ListItems);
        if (size <= 0 || size > MaxEntries || items == 0) return [];
        var bytes = memory.ReadBytes(items, (int)size * 8);
        return Enumerable.Range(0, (int)size).Select(i => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8 * i))).ToList();
    }

    /// <summary>Whether the type of the object at <paramref name="address"/> is <paramref name="typeName"/> or derives from it (tp_base chain); false for an object without a type (a set's dummy).</summary>
    public bool IsInstance(ulong address, string typeName) => address != 0 && Lineage(memory.ReadU64(address + PyObjectLayout.ObType)).Contains(typeName);

    // Each type's name and its bases' (tp_base chain), read once where types are remembered: a dump asks of thousands
    // of objects of a few types.
    private readonly Dictionary<ulong, string[]> _lineages = [];

    private string[] Lineage(ulong type)
    {
        if (type == 0) return [];
        if (_lineages.TryGetValue(type, out var known)) return known;
        var names = new List<string>();
        for (ulong t = type; t != 0 && names.Count < 32; t = memory.ReadU64(t + PyObjectLayout.TypeBase))
            names.Add(ReadCString(memory, memory.ReadU64(t + PyObjectLayout.TypeName), MaxNameLength));
        if (rememberTypes) _lineages[type] = [.. names];
        return [.. names];
    }

    /// <summary>Whether the object at <paramref name="address"/> is of the built-in type named <paramref name="typeName"/> (its tp_name), not a subclass.</summary>
    public bool IsOfType(ulong address, string typeName) => address != 0 && TypeName(address) == typeName;

    /// <summary>The tp_name of the object's type (a C string; a heap type's is its bare name).</summary>
    public string TypeName(ulong address) => Lineage(memory.ReadU64(address + PyObjectLayout.ObType)) is [var name, ..] ? name : "";

    /// <summary>A NUL-terminated string of at most <paramref name="max"/> bytes, read a page at a time (it may end right before an unmapped one).</summary>
    public static string ReadCString(IMemoryReader memory, ulong address, int max)
    {
        var text = new List<byte>();
        while (text.Count < max)
        {
            int chunk = (int)Math.Min((ulong)(max - text.Count), 4096 - (address & 4095));
            var bytes = memory.ReadBytes(address, chunk);
            int end = Array.IndexOf(bytes, (byte)0);
            text.AddRange(end < 0 ? bytes : bytes[..end]);
            if (end >= 0) break;
            address += (ulong)chunk;
        }
        return Encoding.UTF8.GetString(text.ToArray());
    }

    /// <summary>The value of an int of at most <paramref name="maxDigits"/> 30-bit digits, or null for a longer one.</summary>
    public BigInteger? Int(ulong address, int maxDigits)
    {
        if (address == 0) return null;
        ulong size = memory.ReadU64(address + PyObjectLayout.VarSize);
        long digits;
        bool negative;
        if (facts.Objects.LongTag)
        {
            // lv_tag: digit count above 3 bits, sign in the low 2 (0 positive, 1 zero, 2 negative).
            if ((size & 3) == 1) return BigInteger.Zero;
            (digits, negative) = ((long)(size >> 3), (size & 3) == 2);
        }
        else
            (digits, negative) = (Math.Abs((long)size), (long)size < 0);
        if (digits < 0 || digits > maxDigits) return null;
        var raw = memory.ReadBytes(address + PyObjectLayout.LongDigits, (int)digits * 4);
        var value = BigInteger.Zero;
        for (int i = (int)digits - 1; i >= 0; i--)
            value = (value << 30) | (BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(4 * i)) & 0x3fff_ffff);
        return negative ? -value : value;
    }

    /// <summary>Split values (no dict made): the values array under the class's shared keys.</summary>
    private ulong? SharedKeyItem(ulong type, ulong values, string name)
    {
        if (_layout.HeapTypeCachedKeys is not int cachedKeys) return null;
        ulong keys = memory.ReadU64(type + (ulong)cachedKeys);
        return keys == 0 ? null : Find(Entries(keys, values), name);
    }

    private List<(ulong Key, ulong Value)> Entries(ulong keys, ulong splitValues)
    {
        long count;
        ulong entries;
        int entrySize, keyAt;
        if (_layout.Keys == DictKeysForm.SizedIndices)
        {
            long size = (long)memory.ReadU64(keys + 8);
            count = (long)memory.ReadU64(keys + 32);
            if (size <= 0 || size > MaxEntries * 2) return [];
            int indexBytes = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
            entries = keys + 40 + (ulong)(size * indexBytes);
            (entrySize, keyAt) = (24, 8);
        }
        else
        {
            var header = memory.ReadBytes(keys + 8, 3); // dk_log2_size, dk_log2_index_bytes, dk_kind
            count = (long)memory.ReadU64(keys + 24);
            if (header[1] > 20) return [];
            entries = keys + 32 + (1UL << header[1]);
            // DICT_KEYS_GENERAL (0) keeps each key's hash; str-keyed and split keys do not.
            (entrySize, keyAt) = header[2] == 0 ? (24, 8) : (16, 0);
        }
        if (count <= 0 || count > MaxEntries) return [];
        var table = memory.ReadBytes(entries, (int)count * entrySize);
        var values = splitValues != 0 ? memory.ReadBytes(splitValues + (ulong)_layout.SplitValues, (int)count * 8) : null;
        var result = new List<(ulong, ulong)>((int)count);
        for (int i = 0; i < count; i++)
        {
            ulong key = BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(i * entrySize + keyAt));
            ulong value = values is null
                ? BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(i * entrySize + keyAt + 8))
                : BinaryPrimitives.ReadUInt64LittleEndian(values.AsSpan(i * 8));
            if (key != 0 && value != 0) result.Add((key, value)); // deleted entries, and split values not set
        }
        return result;
    }

    private ulong? Find(List<(ulong Key, ulong Value)> entries, string name)
    {
        foreach (var (key, value) in entries)
            if (IsAsciiStr(key, name)) return value;
        return null;
    }

    /// <summary>Whether the object at <paramref name="address"/> is the compact ASCII str <paramref name="ascii"/>: one read.</summary>
    private bool IsAsciiStr(ulong address, string ascii)
    {
        Span<byte> head = stackalloc byte[str.AsciiData + ascii.Length];
        memory.Read(address, head);
        uint state = BinaryPrimitives.ReadUInt32LittleEndian(head[str.State..]);
        long length = BinaryPrimitives.ReadInt64LittleEndian(head[str.Length..]);
        if ((state & StrLayout.CompactAsciiBits) != StrLayout.CompactAsciiBits || length != ascii.Length) return false;
        for (int i = 0; i < ascii.Length; i++)
            if (head[str.AsciiData + i] != ascii[i]) return false;
        return true;
    }

    private static ulong Offset(ulong address, int delta) => (ulong)((long)address + delta);
}
