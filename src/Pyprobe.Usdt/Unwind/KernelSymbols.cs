using System.Globalization;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The kernel's functions by address, from /proc/kallsyms, read once: the names of the kernel frames
/// <c>record --kernel</c> gets. kallsyms gives no sizes, so an address belongs to the nearest function at or below it,
/// as perf names kernel frames. Without the right to see the addresses (kptr_restrict: they read as zeros) nothing is
/// named.
/// </summary>
public sealed class KernelSymbols
{
    private readonly ulong[] _starts;
    private readonly string[] _names;
    private readonly string[] _modules;

    private KernelSymbols(List<(ulong Start, string Name, string Module)> symbols)
    {
        symbols.Sort((a, b) => a.Start.CompareTo(b.Start));
        _starts = symbols.Select(s => s.Start).ToArray();
        _names = symbols.Select(s => s.Name).ToArray();
        _modules = symbols.Select(s => s.Module).ToArray();
    }

    public int Count => _names.Length;

    private static readonly Lazy<KernelSymbols> Running = new(() => Read("/proc/kallsyms"));

    /// <summary>The running kernel's symbols (an empty table when /proc/kallsyms cannot be read).</summary>
    public static KernelSymbols Current => Running.Value;

    /// <summary>The text symbols of a kallsyms-format file: "ADDRESS TYPE NAME [MODULE]" per line.</summary>
    public static KernelSymbols Read(string path)
    {
        var symbols = new List<(ulong, string, string)>();
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 3 || fields[1].Length != 1 || "tTwW".IndexOf(fields[1][0]) < 0) continue;
                if (!ulong.TryParse(fields[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start) || start == 0) continue;
                var module = fields.Length > 3 ? fields[3].Trim('[', ']') : "kernel";
                symbols.Add((start, fields[2], module));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // names nothing: kernel frames are shown by address
        }
        return new KernelSymbols(symbols);
    }

    /// <summary>The function holding <paramref name="address"/> and its module ("kernel" for the kernel's own), or null below every symbol.</summary>
    public (string Name, string Module)? Find(ulong address)
    {
        var index = Array.BinarySearch(_starts, address);
        if (index < 0) index = ~index - 1;
        return index < 0 ? null : (_names[index], _modules[index]);
    }
}
