using System.Buffers.Binary;
using System.Text;

namespace Pyprobe.Bpf.Btf;

/// <summary>
/// The kernel's own type information (<c>/sys/kernel/btf/vmlinux</c>, CONFIG_DEBUG_INFO_BTF), read to learn struct
/// layouts of the running kernel, e.g. where <c>task_struct.thread.fsbase</c> lies, without kernel headers.
/// </summary>
/// <remarks>
/// Format (UAPI btf.h): a header (magic 0xeB9F, version, flags, hdr_len, then type_off/len and str_off/len relative to
/// the header's end), a type section of <c>btf_type</c> records (name_off, info = vlen | kind &lt;&lt; 24 |
/// kind_flag &lt;&lt; 31, size-or-type) each followed by kind-specific data, and a string section of NUL-terminated
/// names. Type ids count from 1 in section order; 0 is void.
/// Loading only finds where each type's record starts; a type is decoded when asked for. Decoding all of vmlinux's
/// (over 100,000 types, their members' names as strings) took ~60 ms of `calls`' attach on a 3.15 target, which needs
/// one member offset.
/// </remarks>
public sealed class KernelBtf : IDisposable
{
    public const string VmlinuxPath = "/sys/kernel/btf/vmlinux";
    private const ushort Magic = 0xeB9F;
    private const int HeaderFields = 24;

    /// <summary>The BTF's bytes: an array (parsed from memory) or the file read into huge pages (the kernel's).</summary>
    private readonly byte[]? _array;
    private readonly HugePageFileBytes? _file;
    private readonly string _source;
    private readonly int _typesStart, _typesLength, _stringsStart, _stringsLength;

    /// <summary>Where each type's record starts in the type section, by id − 1.</summary>
    private readonly int[] _recordOffsets;

    private readonly Dictionary<int, BtfType> _decoded = [];

    private KernelBtf(byte[]? array, HugePageFileBytes? file, string source)
    {
        _array = array;
        _file = file;
        _source = source;
        (_typesStart, _typesLength, _stringsStart, _stringsLength) = ReadHeader(Data, source);
        _recordOffsets = FindRecords(Types, source);
    }

    private ReadOnlySpan<byte> Data
    {
        get
        {
            if (_file is null) return _array;
            ObjectDisposedException.ThrowIf(_file.IsClosed, this);
            return _file.Span;
        }
    }

    /// <summary>Number of types (not counting void).</summary>
    public int TypeCount => _recordOffsets.Length;

    /// <summary>Frees the kernel BTF's memory (5 MB); nothing can be asked after.</summary>
    public void Dispose() => _file?.Dispose();

    private static readonly Dictionary<string, int> VmlinuxOffsets = [];

    /// <summary>
    /// <see cref="MemberOffset"/> in the running kernel's types for each dotted path (<c>"task_struct.thread.fsbase"</c>),
    /// each answered once per process: reading the file is most of the work, and several parts of a session may ask.
    /// </summary>
    public static int[] VmlinuxMemberOffsets(params string[] dottedPaths)
    {
        lock (VmlinuxOffsets)
        {
            KernelBtf? btf = null;
            try
            {
                var offsets = new int[dottedPaths.Length];
                for (var i = 0; i < dottedPaths.Length; i++)
                {
                    if (!VmlinuxOffsets.TryGetValue(dottedPaths[i], out offsets[i]))
                    {
                        btf ??= LoadVmlinux();
                        var names = dottedPaths[i].Split('.');
                        VmlinuxOffsets[dottedPaths[i]] = offsets[i] = btf.MemberOffset(names[0], names[1..]);
                    }
                }
                return offsets;
            }
            finally
            {
                btf?.Dispose();
            }
        }
    }

    /// <summary>One path of <see cref="VmlinuxMemberOffsets"/>.</summary>
    public static int VmlinuxMemberOffset(string dottedPath) => VmlinuxMemberOffsets(dottedPath)[0];

    /// <summary>Reads the running kernel's BTF.</summary>
    /// <exception cref="BtfException">The file is missing (kernel built without CONFIG_DEBUG_INFO_BTF) or malformed.</exception>
    public static KernelBtf LoadVmlinux() => Load(VmlinuxPath);

    public static KernelBtf Load(string path)
    {
        HugePageFileBytes file;
        try
        {
            file = HugePageFileBytes.Read(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            throw new BtfException($"kernel type information {path} is not readable ({e.GetType().Name}): the kernel needs CONFIG_DEBUG_INFO_BTF");
        }
        try
        {
            return new KernelBtf(null, file, path);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public static KernelBtf Parse(ReadOnlySpan<byte> data, string source = "BTF") => new(data.ToArray(), null, source);

    /// <summary>The type with id <paramref name="id"/> (1-based).</summary>
    public BtfType Type(int id)
    {
        if (id < 1 || id > _recordOffsets.Length) throw new BtfException($"BTF type id {id} is out of range 1..{_recordOffsets.Length}");
        if (!_decoded.TryGetValue(id, out var type)) _decoded[id] = type = Decode(id);
        return type;
    }

    /// <summary>The struct (or union) named <paramref name="name"/>; a forward declaration does not count.</summary>
    public BtfType Composite(string name)
    {
        var wanted = Encoding.ASCII.GetBytes(name);
        var types = Types;
        var strings = Strings;
        for (var i = 0; i < _recordOffsets.Length; i++)
        {
            var record = types[_recordOffsets[i]..];
            if (KindOf(BinaryPrimitives.ReadUInt32LittleEndian(record[4..])) is not (BtfKind.Struct or BtfKind.Union)) continue;
            var nameOffset = BinaryPrimitives.ReadInt32LittleEndian(record);
            if (nameOffset <= 0 || nameOffset + wanted.Length >= strings.Length) continue;
            if (strings.Slice(nameOffset, wanted.Length).SequenceEqual(wanted) && strings[nameOffset + wanted.Length] == 0) return Type(i + 1);
        }
        throw new BtfException($"kernel BTF has no struct or union '{name}'");
    }

    private ReadOnlySpan<byte> Types => Data.Slice(_typesStart, _typesLength);

    private ReadOnlySpan<byte> Strings => Data.Slice(_stringsStart, _stringsLength);

    /// <summary>
    /// Byte offset of a member path from the start of <paramref name="structName"/>, e.g.
    /// <c>MemberOffset("task_struct", "thread", "fsbase")</c>. Members of anonymous structs and unions are found as
    /// if they were direct members (as in C); typedefs and qualifiers are looked through.
    /// </summary>
    /// <exception cref="BtfException">The struct or a member is missing, a step is not a struct/union, or the member
    /// is a bit field.</exception>
    public int MemberOffset(string structName, params string[] path)
    {
        if (path.Length == 0) throw new ArgumentException("the member path is empty", nameof(path));
        var current = Composite(structName);
        var bits = 0;
        var walked = structName;
        for (var i = 0; i < path.Length; i++)
        {
            if (!TryFindMember(current, path[i], out var member))
                throw new BtfException($"kernel BTF: {walked} ({current.Kind.ToString().ToLowerInvariant()} {Describe(current)}) has no member '{path[i]}'");
            bits += member.BitOffset;
            walked += "." + path[i];
            var type = Resolve(member.TypeId);
            if (i < path.Length - 1 && !type.IsComposite)
                throw new BtfException($"kernel BTF: {walked} is a {type.Kind.ToString().ToLowerInvariant()}, not a struct or union, so it has no member '{path[i + 1]}'");
            current = type;
        }
        if (bits % 8 != 0) throw new BtfException($"kernel BTF: {walked} is a bit field (bit offset {bits})");
        return bits / 8;
    }

    /// <summary>The type behind typedefs, const, volatile, restrict and type tags.</summary>
    public BtfType Resolve(int typeId)
    {
        for (var hops = 0; hops < 64; hops++)
        {
            if (typeId == 0) return new BtfType(0, BtfKind.Unknown, "void", 0, []);
            var type = Type(typeId);
            if (!type.IsAlias) return type;
            typeId = type.SizeOrType;
        }
        throw new BtfException($"kernel BTF: type {typeId} is an alias chain longer than 64");
    }

    private bool TryFindMember(BtfType composite, string name, out BtfMember found)
    {
        foreach (var member in composite.Members)
        {
            if (member.Name == name)
            {
                found = member;
                return true;
            }
        }
        // Anonymous struct/union members put their members in the enclosing scope.
        foreach (var member in composite.Members)
        {
            if (member.Name.Length != 0) continue;
            var inner = Resolve(member.TypeId);
            if (inner.IsComposite && TryFindMember(inner, name, out var nested))
            {
                found = nested with { BitOffset = member.BitOffset + nested.BitOffset };
                return true;
            }
        }
        found = default;
        return false;
    }

    private static string Describe(BtfType type) => type.Name.Length == 0 ? "<anonymous>" : type.Name;

    /// <summary>Where the type and string sections lie in <paramref name="data"/>, from its header.</summary>
    private static (int TypesStart, int TypesLength, int StringsStart, int StringsLength) ReadHeader(ReadOnlySpan<byte> data, string source)
    {
        if (data.Length < HeaderFields || BinaryPrimitives.ReadUInt16LittleEndian(data) != Magic)
            throw new BtfException($"{source} is not BTF (bad magic or shorter than its header)");
        var headerLength = BinaryPrimitives.ReadInt32LittleEndian(data[4..]);
        var typeOffset = BinaryPrimitives.ReadInt32LittleEndian(data[8..]);
        var typeLength = BinaryPrimitives.ReadInt32LittleEndian(data[12..]);
        var stringOffset = BinaryPrimitives.ReadInt32LittleEndian(data[16..]);
        var stringLength = BinaryPrimitives.ReadInt32LittleEndian(data[20..]);
        if (headerLength < HeaderFields || typeOffset < 0 || typeLength < 0 || stringOffset < 0 || stringLength < 0
            || (long)headerLength + typeOffset + typeLength > data.Length || (long)headerLength + stringOffset + stringLength > data.Length)
            throw new BtfException($"{source}: section offsets run past the end of the data ({data.Length} bytes)");
        return (headerLength + typeOffset, typeLength, headerLength + stringOffset, stringLength);
    }

    /// <summary>Where each type's record starts in the type section, walking the records by their kinds' sizes.</summary>
    private static int[] FindRecords(ReadOnlySpan<byte> types, string source)
    {
        var offsets = new List<int>();
        var position = 0;
        while (position < types.Length)
        {
            if (position + 12 > types.Length) throw new BtfException($"{source}: truncated type record at byte {position}");
            var info = BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 4)..]);
            var vlen = (int)(info & 0xffff);
            var kind = KindOf(info);
            var extra = kind switch
            {
                BtfKind.Int or BtfKind.Variable or BtfKind.DeclarationTag => 4,
                BtfKind.Array => 12,
                BtfKind.Struct or BtfKind.Union or BtfKind.DataSection or BtfKind.Enum64 => 12 * vlen,
                BtfKind.Enum or BtfKind.FunctionPrototype => 8 * vlen,
                BtfKind.Pointer or BtfKind.Forward or BtfKind.Typedef or BtfKind.Volatile or BtfKind.Const
                    or BtfKind.Restrict or BtfKind.Function or BtfKind.Float or BtfKind.TypeTag => 0,
                _ => throw new BtfException($"{source}: unknown BTF kind {(int)kind} at type {offsets.Count + 1}"),
            };
            if (position + 12 + extra > types.Length) throw new BtfException($"{source}: truncated data of type {offsets.Count + 1}");
            offsets.Add(position);
            position += 12 + extra;
        }
        return [.. offsets];
    }

    /// <summary>The kind in a btf_type's info word (bits 24–28).</summary>
    private static BtfKind KindOf(uint info) => (BtfKind)((info >> 24) & 0x1f);

    /// <summary>The type with id <paramref name="id"/>, read from its record (its members too, for a struct or union).</summary>
    private BtfType Decode(int id)
    {
        var types = Types;
        var strings = Strings;
        var position = _recordOffsets[id - 1];
        var nameOffset = BinaryPrimitives.ReadInt32LittleEndian(types[position..]);
        var info = BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 4)..]);
        var sizeOrType = BinaryPrimitives.ReadInt32LittleEndian(types[(position + 8)..]);
        var vlen = (int)(info & 0xffff);
        var kind = KindOf(info);
        var kindFlag = (info >> 31) != 0;
        IReadOnlyList<BtfMember> members = [];
        if (kind is BtfKind.Struct or BtfKind.Union)
        {
            var list = new BtfMember[vlen];
            for (var m = 0; m < vlen; m++)
            {
                var record = types.Slice(position + 12 + 12 * m, 12);
                var offset = BinaryPrimitives.ReadUInt32LittleEndian(record[8..]);
                // With kind_flag the high 8 bits are a bit-field size and the low 24 the bit offset.
                var bitOffset = kindFlag ? (int)(offset & 0xffffff) : (int)offset;
                list[m] = new BtfMember(Name(strings, BinaryPrimitives.ReadInt32LittleEndian(record), _source), BinaryPrimitives.ReadInt32LittleEndian(record[4..]), bitOffset);
            }
            members = list;
        }
        return new BtfType(id, kind, Name(strings, nameOffset, _source), sizeOrType, members);
    }

    private static string Name(ReadOnlySpan<byte> strings, int offset, string source)
    {
        if (offset == 0) return "";
        if ((uint)offset >= (uint)strings.Length) throw new BtfException($"{source}: name offset {offset} is outside the string section");
        var rest = strings[offset..];
        var end = rest.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? rest : rest[..end]);
    }
}
