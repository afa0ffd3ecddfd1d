using System.Text;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The kernel's functions by address, from /proc/kallsyms, read once: the names of the kernel frames
/// <c>record --kernel</c> gets. kallsyms gives no sizes, so an address belongs to the nearest function at or below it,
/// as perf names kernel frames. Without the right to see the addresses (kptr_restrict: they read as zeros) nothing is
/// named. The file (~5 MB for ~120,000 symbols) is parsed as it is read, a chunk at a time: each text symbol's address
/// into one array, its name into one byte arena, its module as an index into the few modules; a name becomes a string
/// only when a frame asks for it.
/// </summary>
public sealed class KernelSymbols
{
    private const int ChunkSize = 1 << 18;
    // A distribution kernel has ~120,000 text symbols averaging ~24 bytes of name: room for them without regrowing.
    private const int ExpectedSymbols = 1 << 17, ExpectedNameBytes = 4 << 20;
    private readonly int _count;
    private readonly ulong[] _starts;
    private readonly int[] _nameAt;
    private readonly ushort[] _nameLength, _module;
    private readonly byte[] _names;
    private readonly string[] _modules;

    /// <summary>The first <paramref name="count"/> entries of the arrays are the symbols, by address.</summary>
    private KernelSymbols(int count, ulong[] starts, int[] nameAt, ushort[] nameLength, ushort[] module, byte[] names, string[] modules) =>
        (_count, _starts, _nameAt, _nameLength, _module, _names, _modules) = (count, starts, nameAt, nameLength, module, names, modules);

    public int Count => _count;

    private static readonly Lazy<KernelSymbols> Running = new(() => Read("/proc/kallsyms"));

    /// <summary>The running kernel's symbols (an empty table when /proc/kallsyms cannot be read).</summary>
    public static KernelSymbols Current => Running.Value;

    /// <summary>The text symbols (t, T, w, W) of a kallsyms-format file: "ADDRESS TYPE NAME[\t[MODULE]]" per line.</summary>
    public static KernelSymbols Read(string path)
    {
        var table = new Builder();
        try
        {
            // A proc file says it is empty: read it in chunks until it ends, each complete line parsed at once.
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            var buffer = new byte[ChunkSize];
            var filled = 0;
            int read;
            while ((read = file.Read(buffer, filled, buffer.Length - filled)) > 0)
            {
                filled += read;
                var start = 0;
                for (int end; (end = Array.IndexOf(buffer, (byte)'\n', start, filled - start)) >= 0; start = end + 1)
                    table.Line(buffer.AsSpan(start, end - start));
                Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                filled -= start;
                if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2); // one line longer than a chunk
            }
            table.Line(buffer.AsSpan(0, filled));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new KernelSymbols(0, [], [], [], [], [], []); // names nothing: kernel frames are shown by address
        }
        return table.Build();
    }

    /// <summary>The function holding <paramref name="address"/> and its module ("kernel" for the kernel's own), or null below every symbol.</summary>
    public (string Name, string Module)? Find(ulong address)
    {
        var index = Array.BinarySearch(_starts, 0, _count, address);
        if (index < 0) index = ~index - 1;
        if (index < 0) return null;
        return (Encoding.UTF8.GetString(_names, _nameAt[index], _nameLength[index]), _modules[_module[index]]);
    }

    /// <summary>
    /// The table as its lines come, in arrays sized for a distribution kernel (grown by doubling past that, and kept
    /// with their spare room rather than copied), sorted by address at the end where the file was not.
    /// </summary>
    private sealed class Builder
    {
        private ulong[] _starts = new ulong[ExpectedSymbols];
        private int[] _nameAt = new int[ExpectedSymbols];
        private ushort[] _nameLength = new ushort[ExpectedSymbols], _module = new ushort[ExpectedSymbols];
        private byte[] _names = new byte[ExpectedNameBytes];
        private int _count, _namesUsed;
        private bool _sorted = true;
        private readonly List<string> _modules = ["kernel"];
        private byte[] _lastModule = [];
        private ushort _lastModuleIndex;

        public void Line(ReadOnlySpan<byte> line)
        {
            // "ffffffff81000000 T name" or "... t name\t[module]": 16 hex digits (8 on a 32-bit kernel), the type between spaces.
            var space = line.IndexOf((byte)' ');
            if (space is <= 0 or > 16 || line.Length < space + 4 || line[space + 2] != ' ') return;
            if (line[space + 1] is not ((byte)'t' or (byte)'T' or (byte)'w' or (byte)'W')) return;
            ulong address = 0;
            foreach (var c in line[..space])
            {
                var digit = c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : c is >= (byte)'A' and <= (byte)'F' ? c - 'A' + 10 : -1;
                if (digit < 0) return;
                address = address << 4 | (uint)digit;
            }
            if (address == 0) return;
            var rest = line[(space + 3)..];
            var nameEnd = rest.IndexOfAny((byte)'\t', (byte)' ');
            var name = nameEnd < 0 ? rest : rest[..nameEnd];
            if (name.IsEmpty || name.Length > ushort.MaxValue) return;
            var module = (ushort)0;
            if (nameEnd >= 0 && rest[nameEnd..].IndexOf((byte)'[') is var open and >= 0)
            {
                var bracketed = rest[(nameEnd + open + 1)..];
                var close = bracketed.IndexOf((byte)']');
                if (close > 0) module = ModuleIndex(bracketed[..close]);
            }
            Add(address, name, module);
        }

        /// <summary>A module's lines come together: compare with the last one before looking it up.</summary>
        private ushort ModuleIndex(ReadOnlySpan<byte> name)
        {
            if (name.SequenceEqual(_lastModule)) return _lastModuleIndex;
            var text = Encoding.UTF8.GetString(name);
            var index = _modules.IndexOf(text);
            if (index < 0)
            {
                if (_modules.Count > ushort.MaxValue) return 0;
                index = _modules.Count;
                _modules.Add(text);
            }
            (_lastModule, _lastModuleIndex) = (name.ToArray(), (ushort)index);
            return (ushort)index;
        }

        private void Add(ulong address, ReadOnlySpan<byte> name, ushort module)
        {
            if (_count == _starts.Length)
            {
                Array.Resize(ref _starts, _count * 2);
                Array.Resize(ref _nameAt, _count * 2);
                Array.Resize(ref _nameLength, _count * 2);
                Array.Resize(ref _module, _count * 2);
            }
            while (_namesUsed + name.Length > _names.Length) Array.Resize(ref _names, _names.Length * 2);
            if (_count > 0 && address < _starts[_count - 1]) _sorted = false;
            _starts[_count] = address;
            _nameAt[_count] = _namesUsed;
            _nameLength[_count] = (ushort)name.Length;
            _module[_count] = module;
            name.CopyTo(_names.AsSpan(_namesUsed));
            _namesUsed += name.Length;
            _count++;
        }

        public KernelSymbols Build()
        {
            if (!_sorted)
            {
                // Modules' symbols may come below the kernel's: order all by address, each symbol's parts with it.
                var order = new int[_count];
                for (var i = 0; i < _count; i++) order[i] = i;
                Array.Sort(_starts, order, 0, _count);
                var (nameAt, nameLength, module) = (_nameAt, _nameLength, _module);
                (_nameAt, _nameLength, _module) = (new int[_count], new ushort[_count], new ushort[_count]);
                for (var i = 0; i < _count; i++)
                    (_nameAt[i], _nameLength[i], _module[i]) = (nameAt[order[i]], nameLength[order[i]], module[order[i]]);
            }
            return new KernelSymbols(_count, _starts, _nameAt, _nameLength, _module, _names, [.. _modules]);
        }
    }
}
