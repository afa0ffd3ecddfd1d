using Xunit.Abstractions;

namespace Pyprobe.Torture.Tests;

/// <summary>A real ELF file loaded into memory, plus where its interesting bytes are.</summary>
public sealed record RealBinary(string Label, string Path, byte[] Bytes, ElfLayout Layout);

/// <summary>
/// The real binaries the mutation fuzzers start from: the system python3.11 and libpython3.11,
/// plus the cached Debian 3.9 and 3.15 builds from ${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/pythons.tsv
/// (scripts/fetch-pythons.sh). A missing input fails under CI=true and is reported otherwise.
/// </summary>
public static class RealBinaries
{
    public static readonly string[] CachedVersions = ["3.9", "3.15"];

    private static readonly Lazy<(IReadOnlyList<RealBinary> Found, IReadOnlyList<string> Missing)> Loaded = new(Load);

    public static string ManifestPath =>
        System.IO.Path.Combine(Environment.GetEnvironmentVariable("PYPROBE_CACHE") is { Length: > 0 } c
            ? c : System.IO.Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "pyprobe"), "pythons", "pythons.tsv");

    /// <summary>All available inputs; reports (or, under CI=true, fails on) missing ones.</summary>
    public static IReadOnlyList<RealBinary> Get(ITestOutputHelper output)
    {
        var (found, missing) = Loaded.Value;
        foreach (var m in missing)
        {
            if (Torture.IsCi) Assert.Fail($"Missing fuzz input {m} (CI=true; run scripts/fetch-pythons.sh).");
            output.WriteLine($"SKIPPED input: missing {m}.");
        }
        Assert.True(found.Count > 0, "no real binaries to mutate");
        return found;
    }

    private static (IReadOnlyList<RealBinary>, IReadOnlyList<string>) Load()
    {
        var candidates = new List<(string Label, string? Path, string What)>
        {
            ("python3.11", "/usr/bin/python3.11", "/usr/bin/python3.11"),
            ("libpython3.11", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"),
        };
        var rows = File.Exists(ManifestPath)
            ? File.ReadAllLines(ManifestPath).Select(l => l.Split('\t')).Where(f => f.Length >= 8 && f[0] != "version").ToList()
            : null;
        foreach (var v in CachedVersions)
        {
            var row = rows?.FirstOrDefault(f => f[0] == v);
            candidates.Add(($"cached-python{v}", row?[2], $"cached Python {v} binary (manifest {ManifestPath})"));
            candidates.Add(($"cached-libpython{v}", row is null || row[7] is "-" or "" ? null : row[7], $"cached libpython{v} (manifest {ManifestPath})"));
        }

        var found = new List<RealBinary>();
        var missing = new List<string>();
        foreach (var (label, path, what) in candidates)
        {
            if (path is null || !File.Exists(path)) { missing.Add(what); continue; }
            var bytes = File.ReadAllBytes(path);
            found.Add(new RealBinary(label, path, bytes, ElfLayout.Read(bytes)));
        }
        return (found, missing);
    }
}

/// <summary>
/// A private, mutable copy of a real binary. Mutations are recorded and undone after each case,
/// so a case costs a few field writes instead of a multi-megabyte copy.
/// </summary>
public sealed class MutableImage(RealBinary source)
{
    private readonly List<(int Offset, byte[] Old)> _undo = [];

    public RealBinary Source { get; } = source;
    public byte[] Data { get; } = (byte[])source.Bytes.Clone();
    public int Length { get; set; } = source.Bytes.Length;

    public void Write(long offset, ReadOnlySpan<byte> bytes)
    {
        if (offset < 0 || offset >= Data.Length) return;
        int n = (int)Math.Min(bytes.Length, Data.Length - offset);
        _undo.Add(((int)offset, Data.AsSpan((int)offset, n).ToArray()));
        bytes[..n].CopyTo(Data.AsSpan((int)offset));
    }

    public void WriteUInt(long offset, int width, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Write(offset, b[..width]);
    }

    public ulong ReadUInt(long offset, int width)
    {
        ulong v = 0;
        for (int i = width - 1; i >= 0; i--)
            v = (v << 8) | (offset + i < Data.Length ? Data[offset + i] : (byte)0);
        return v;
    }

    public void Reset()
    {
        for (int i = _undo.Count - 1; i >= 0; i--)
            _undo[i].Old.CopyTo(Data, _undo[i].Offset);
        _undo.Clear();
        Length = Data.Length;
    }
}
