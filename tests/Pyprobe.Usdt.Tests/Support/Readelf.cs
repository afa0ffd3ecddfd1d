using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// Independent reference: runs binutils' readelf -n and returns the stapsdt notes it sees, so the
/// parser can be cross-checked on any binary (not only the ones with hard-coded figures).
/// </summary>
public static partial class Readelf
{
    public sealed record Note(string Provider, string Name, ulong Location, ulong Base, ulong Semaphore, string Arguments);

    [GeneratedRegex(@"Provider: (\S+)\s+Name: (\S+)\s+Location: 0x([0-9a-f]+), Base: 0x([0-9a-f]+), Semaphore: 0x([0-9a-f]+)\s+Arguments:[ \t]*([^\n]*)")]
    private static partial Regex NoteRegex();

    public static bool Available => File.Exists("/usr/bin/readelf");

    public static IReadOnlyList<Note> Notes(string path)
    {
        var psi = new ProcessStartInfo("readelf", ["-n", "-W", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return NoteRegex().Matches(output).Select(m => new Note(m.Groups[1].Value, m.Groups[2].Value,
            ulong.Parse(m.Groups[3].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            ulong.Parse(m.Groups[4].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            ulong.Parse(m.Groups[5].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            m.Groups[6].Value.Trim())).ToList();
    }

    /// <summary>A named symbol as readelf -sW prints it (the version suffix of .dynsym names dropped).</summary>
    public sealed record Symbol(string Table, string Name, ulong Value, ulong Size, string Type, string Bind, bool Defined);

    [GeneratedRegex(@"^Symbol table '(\S+)' contains")]
    private static partial Regex SymbolTableRegex();

    [GeneratedRegex(@"^\s*\d+: ([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+(\w+)\s+(\w+)\s+\w+\s+(\w+)\s+(\S+)")]
    private static partial Regex SymbolRegex();

    public static IReadOnlyList<Symbol> Symbols(string path)
    {
        var psi = new ProcessStartInfo("readelf", ["-sW", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var symbols = new List<Symbol>();
        var table = "";
        while (p.StandardOutput.ReadLine() is { } line)
        {
            if (SymbolTableRegex().Match(line) is { Success: true } header) { table = header.Groups[1].Value; continue; }
            if (SymbolRegex().Match(line) is not { Success: true } m) continue;
            var size = m.Groups[2].Value;
            var name = m.Groups[6].Value;
            if (table == ".dynsym" && name.IndexOf('@') is > 0 and var at) name = name[..at];
            symbols.Add(new Symbol(table, name, ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                size.StartsWith("0x", StringComparison.Ordinal) ? ulong.Parse(size[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture) : ulong.Parse(size, CultureInfo.InvariantCulture),
                m.Groups[3].Value, m.Groups[4].Value, m.Groups[5].Value != "UND"));
        }
        p.WaitForExit();
        return symbols;
    }

    /// <summary>Asserts that the binary's parsed probes are exactly readelf's notes (addresses, args, no prelink here).</summary>
    public static void AssertMatches(UsdtBinary binary, string path)
    {
        var expected = Notes(path).OrderBy(n => n.Provider).ThenBy(n => n.Name).ThenBy(n => n.Location).ToList();
        var actual = binary.Probes.SelectMany(p => p.Sites.Select(s => (p.Provider, p.Name, s))).ToList();
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var (prov, name, s) = actual[i];
            Assert.Equal(expected[i].Provider, prov);
            Assert.Equal(expected[i].Name, name);
            Assert.Equal(expected[i].Location, s.Address);
            Assert.Equal(expected[i].Semaphore, s.SemaphoreAddress);
            Assert.Equal(expected[i].Arguments, s.ArgumentText);
        }
    }
}
