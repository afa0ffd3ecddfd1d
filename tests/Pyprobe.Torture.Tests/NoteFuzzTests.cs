using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Pyprobe.Usdt;
using Xunit.Abstractions;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// Feeds StapsdtNoteReader.Parse ≥ 50,000 mutated .note.stapsdt sections taken from the real
/// binaries (plus a synthetic one mixing foreign notes in): corrupted namesz/descsz/type, strings
/// without NUL, truncation, splicing, random bytes. Each must parse into sane notes or fail with a
/// UsdtException naming the file.
/// </summary>
[Collection(Torture.Collection)]
public class NoteFuzzTests(ITestOutputHelper output)
{
    private const string Label = "fuzz.note";

    private static byte[] Synthetic()
    {
        var b = new List<byte>();
        void Note(string name, uint type, byte[] desc)
        {
            var n = Encoding.ASCII.GetBytes(name + "\0");
            Span<byte> u32 = stackalloc byte[4];
            foreach (var v in new[] { (uint)n.Length, (uint)desc.Length, type })
            {
                BinaryPrimitives.WriteUInt32LittleEndian(u32, v);
                b.AddRange(u32.ToArray());
            }
            b.AddRange(n);
            while (b.Count % 4 != 0) b.Add(0);
            b.AddRange(desc);
            while (b.Count % 4 != 0) b.Add(0);
        }
        byte[] Desc(ulong loc, string prov, string name, string args)
        {
            var d = new byte[24];
            BinaryPrimitives.WriteUInt64LittleEndian(d, loc);
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(8), 0x401f00);
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(16), 0x403000);
            return [.. d, .. Encoding.UTF8.GetBytes($"{prov}\0{name}\0{args}\0")];
        }
        Note("stapsdt", 3, Desc(0x401000, "python", "function__entry", "8@%rbp 8@%r12 -4@%eax"));
        Note("GNU", 3, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
        Note("stapsdt", 1, Desc(0x401004, "x", "y", ""));
        Note("stapsdt", 3, Desc(0x401008, "p", "n", ""));
        Note("stapsdtX", 3, Desc(0x40100c, "p", "n", ""));
        Note("stapsdt", 3, Desc(0x401010, "prov", "name", "-4@12+g_table(%rip) 8@$0x7fffffffffffffff -1@-96(%rbp,%rax,8)"));
        b.AddRange(new byte[7]); // trailing padding some linkers leave
        return [.. b];
    }

    internal static string? RunCase(byte[] section)
    {
        try
        {
            var notes = StapsdtNoteReader.Parse(section, Label);
            // Smallest possible stapsdt note: 12 header + 8 name + 24 addresses + 3 NULs (+pad).
            if (notes.Count > section.Length / 47) return $"{notes.Count} notes from {section.Length} bytes";
            foreach (var n in notes)
            {
                if (n.Provider.Length == 0 || n.Name.Length == 0) return "empty provider or name accepted";
                if ((n.Provider + n.Name + n.Arguments).Contains('\0')) return "NUL inside a string";
            }
            return null;
        }
        catch (UsdtException e)
        {
            return e.Message.Contains(Label, StringComparison.Ordinal) && e.Message.Contains(".note.stapsdt") ? null : $"message does not name the file/section: {e.Message}";
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
    }

    internal static byte[] Generate(IReadOnlyList<byte[]> seeds, ulong seed, int index, out string what)
    {
        var r = new Rng(seed, 3, (ulong)index);
        var src = seeds[index % seeds.Count];
        var b = new List<byte>(src);
        var d = new StringBuilder($"source {index % seeds.Count}");
        // Note starts of the original (for aimed header mutations).
        var starts = new List<int>();
        for (int p = 0; p + 12 <= src.Length;)
        {
            starts.Add(p);
            long next = p + 12L + ((BinaryPrimitives.ReadUInt32LittleEndian(src.AsSpan(p)) + 3L) & ~3L) + ((BinaryPrimitives.ReadUInt32LittleEndian(src.AsSpan(p + 4)) + 3L) & ~3L);
            if (next > src.Length) break;
            p = (int)next;
        }
        int n = r.Chance(60) ? 1 : r.Next(2, 6);
        for (int m = 0; m < n; m++)
        {
            if (b.Count == 0) b.Add(0);
            switch (r.Next(9))
            {
                case 0:
                case 1:
                {
                    int at = r.Pick(starts) + r.Pick([0, 4, 8]);
                    if (at + 4 > b.Count) break;
                    uint old = BinaryPrimitives.ReadUInt32LittleEndian(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(b)[at..]);
                    uint v = (uint)Mutator.Interesting(ref r, old, 4, b.Count);
                    BinaryPrimitives.WriteUInt32LittleEndian(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(b)[at..], v);
                    d.Append($"; u32@{at}: {old} -> {v}");
                    break;
                }
                case 2:
                {
                    // Remove NUL terminators.
                    int k = r.Next(1, 4);
                    for (int i = r.Next(b.Count); i < b.Count && k > 0; i++)
                        if (b[i] == 0) { b[i] = (byte)r.Pick("A%@ \xc3"u8.ToArray()); k--; d.Append($"; un-NUL {i}"); }
                    break;
                }
                case 3:
                {
                    int len = r.Next(0, b.Count);
                    b.RemoveRange(len, b.Count - len);
                    d.Append($"; truncate {len}");
                    break;
                }
                case 4:
                {
                    int i = r.Next(b.Count);
                    b[i] = r.Chance(50) ? (byte)(b[i] ^ (1 << r.Next(8))) : (byte)r.Next(256);
                    d.Append($"; byte {i}");
                    break;
                }
                case 5:
                {
                    // Splice: duplicate a chunk somewhere else (misaligned notes, repeated headers).
                    int from = r.Next(b.Count), len = r.Next(1, Math.Min(200, b.Count - from) + 1), to = r.Next(b.Count + 1);
                    b.InsertRange(to, b.GetRange(from, len));
                    d.Append($"; splice {from}+{len} -> {to}");
                    break;
                }
                case 6:
                {
                    int from = r.Next(b.Count), len = r.Next(1, Math.Min(64, b.Count - from) + 1);
                    b.RemoveRange(from, len);
                    d.Append($"; cut {from}+{len}");
                    break;
                }
                case 7:
                {
                    int at = r.Next(b.Count + 1), len = r.Next(1, 64);
                    var junk = new byte[len];
                    for (int i = 0; i < len; i++) junk[i] = r.Chance(30) ? (byte)0 : (byte)r.Next(256);
                    b.InsertRange(at, junk);
                    d.Append($"; insert {len} @{at}");
                    break;
                }
                default:
                {
                    // Entirely random section.
                    int len = r.Next(0, 256);
                    b.Clear();
                    for (int i = 0; i < len; i++) b.Add(r.Chance(40) ? (byte)r.Next(0, 16) : (byte)r.Next(256));
                    d.Append($"; random {len}");
                    break;
                }
            }
        }
        what = d.ToString();
        return [.. b];
    }

    [Fact]
    public void MutatedNoteSections_ParseSanelyOrFailWithUsdtException()
    {
        var seeds = RealBinaries.Get(output)
            .Select(b => b.Layout.NoteSection is { } n ? b.Bytes.AsSpan((int)n.FileOffset, (int)n.Size).ToArray() : null)
            .OfType<byte[]>().Append(Synthetic()).ToList();
        foreach (var s in seeds)
            Assert.NotEmpty(StapsdtNoteReader.Parse(s, Label));

        ulong seed = Torture.Seed;
        int total = Torture.Scale(60_000);
        int current = -1;
        long slowestTicks = 0;
        int slowest = 0;
        int parsed = 0;
        var failures = new List<string>();
        var sw = Stopwatch.StartNew();
        Torture.RunWithTimeout(TimeSpan.FromSeconds(Torture.Long ? 600 : 30),
            () => { Generate(seeds, seed, current, out var w); return $"case {current}: {w}"; },
            token =>
            {
                for (int i = 0; i < total && !token.IsCancellationRequested; i++)
                {
                    Volatile.Write(ref current, i);
                    var section = Generate(seeds, seed, i, out var what);
                    long t0 = Stopwatch.GetTimestamp();
                    var problem = RunCase(section);
                    long dt = Stopwatch.GetTimestamp() - t0;
                    // Re-time an apparently slow case once (scheduler/GC stalls are not repeatable).
                    if (Stopwatch.GetElapsedTime(0, dt) > ArgumentFuzzTests.CaseLimit) { t0 = Stopwatch.GetTimestamp(); RunCase(section); dt = Stopwatch.GetTimestamp() - t0; }
                    if (dt > slowestTicks) { slowestTicks = dt; slowest = i; }
                    if (problem is null) { try { StapsdtNoteReader.Parse(section, Label); parsed++; } catch (UsdtException) { } }
                    if (problem is not null && failures.Count < 20)
                        failures.Add($"seed 0x{seed:x} case {i} ({what}): {Convert.ToHexString(section)} -> {problem}");
                }
            });
        sw.Stop();
        Generate(seeds, seed, slowest, out var slowestWhat);
        Torture.Report(output, "note sections", total, sw, Stopwatch.GetElapsedTime(0, slowestTicks), $"case {slowest}: {slowestWhat}");
        output.WriteLine($"{parsed:N0} parsed, {total - parsed:N0} rejected");
        Assert.True(failures.Count == 0, $"{failures.Count} failing case(s):\n" + string.Join("\n", failures));
        Assert.True(Stopwatch.GetElapsedTime(0, slowestTicks) < ArgumentFuzzTests.CaseLimit, $"case {slowest} too slow");
        Assert.InRange(parsed, total / 20, total - total / 20);
    }
}
