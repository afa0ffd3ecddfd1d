using System.Text;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The kernel's functions by address, from /proc/kallsyms, read once: the names of the kernel frames
/// <c>record --kernel</c> gets. kallsyms gives no sizes, so an address belongs to the nearest function at or below it,
/// as perf names kernel frames. Without the right to see the addresses (kptr_restrict: they read as zeros) nothing is
/// named. The file is kept as read (~5 MB for ~120,000 symbols) and a name becomes a string only when a frame asks for
/// it: turning every line into strings cost ~200 ms and ~30 MB for the few hundred functions a profile meets.
/// </summary>
public sealed class KernelSymbols
{
    private readonly byte[] _text;
    private readonly ulong[] _starts;
    // Per symbol, in address order: where its name and its module ("" for the kernel's own) lie in _text.
    private readonly int[] _nameAt, _nameLength, _moduleAt, _moduleLength;

    private KernelSymbols(byte[] text, List<(ulong Start, int NameAt, int NameLength, int ModuleAt, int ModuleLength)> symbols)
    {
        _text = text;
        symbols.Sort((a, b) => a.Start.CompareTo(b.Start));
        _starts = new ulong[symbols.Count];
        (_nameAt, _nameLength, _moduleAt, _moduleLength) = (new int[symbols.Count], new int[symbols.Count], new int[symbols.Count], new int[symbols.Count]);
        for (var i = 0; i < symbols.Count; i++)
            (_starts[i], _nameAt[i], _nameLength[i], _moduleAt[i], _moduleLength[i]) = symbols[i];
    }

    public int Count => _starts.Length;

    private static readonly Lazy<KernelSymbols> Running = new(() => Read("/proc/kallsyms"));

    /// <summary>The running kernel's symbols (an empty table when /proc/kallsyms cannot be read).</summary>
    public static KernelSymbols Current => Running.Value;

    /// <summary>The text symbols (t, T, w, W) of a kallsyms-format file: "ADDRESS TYPE NAME[\t[MODULE]]" per line.</summary>
    public static KernelSymbols Read(string path)
    {
        byte[] text;
        try
        {
            text = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new KernelSymbols([], []); // names nothing: kernel frames are shown by address
        }
        var symbols = new List<(ulong, int, int, int, int)>(text.Length / 40);
        var at = 0;
        while (at < text.Length)
        {
            var end = Array.IndexOf(text, (byte)'\n', at);
            if (end < 0) end = text.Length;
            ParseLine(text, at, end, symbols);
            at = end + 1;
        }
        return new KernelSymbols(text, symbols);
    }

    private static void ParseLine(byte[] text, int start, int end, List<(ulong, int, int, int, int)> symbols)
    {
        ulong address = 0;
        var i = start;
        for (; i < end && text[i] != ' '; i++)
        {
            var c = text[i];
            var digit = c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : c is >= (byte)'A' and <= (byte)'F' ? c - 'A' + 10 : -1;
            if (digit < 0 || i - start >= 16) return;
            address = address << 4 | (uint)digit;
        }
        // " T name", the type one letter between spaces
        if (address == 0 || i + 3 >= end || text[i + 2] != ' ' || text[i + 1] is not ((byte)'t' or (byte)'T' or (byte)'w' or (byte)'W')) return;
        var nameAt = i + 3;
        var nameEnd = nameAt;
        while (nameEnd < end && text[nameEnd] != '\t' && text[nameEnd] != ' ') nameEnd++;
        if (nameEnd == nameAt) return;
        var (moduleAt, moduleLength) = (0, 0);
        var open = Array.IndexOf(text, (byte)'[', nameEnd, end - nameEnd);
        if (open >= 0)
        {
            var close = Array.IndexOf(text, (byte)']', open, end - open);
            if (close > open + 1) (moduleAt, moduleLength) = (open + 1, close - open - 1);
        }
        symbols.Add((address, nameAt, nameEnd - nameAt, moduleAt, moduleLength));
    }

    /// <summary>The function holding <paramref name="address"/> and its module ("kernel" for the kernel's own), or null below every symbol.</summary>
    public (string Name, string Module)? Find(ulong address)
    {
        var index = Array.BinarySearch(_starts, address);
        if (index < 0) index = ~index - 1;
        if (index < 0) return null;
        var name = Encoding.UTF8.GetString(_text, _nameAt[index], _nameLength[index]);
        var module = _moduleLength[index] == 0 ? "kernel" : Encoding.UTF8.GetString(_text, _moduleAt[index], _moduleLength[index]);
        return (name, module);
    }
}
