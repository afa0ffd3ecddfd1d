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
