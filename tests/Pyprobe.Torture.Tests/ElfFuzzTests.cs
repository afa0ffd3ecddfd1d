using System.Diagnostics;
using Pyprobe.Usdt;
using Xunit.Abstractions;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// Opens ≥ 20,000 mutated copies of real CPython binaries (python3.11, libpython3.11 and the
/// cached 3.9/3.15 builds) through UsdtBinary, in memory. Each must either open with sane results
/// (every site inside the file, consistent arguments) or fail with a UsdtException; nothing else,
/// and no case may take more than 2 s.
/// </summary>
[Collection(Torture.Collection)]
public class ElfFuzzTests(ITestOutputHelper output)
{
    public static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(2);

    [Fact]
    public void RealBinaries_OpenInMemoryExactlyLikeFromDisk()
    {
        foreach (var b in RealBinaries.Get(output))
        {
            var disk = UsdtBinary.Open(b.Path);
            var mem = UsdtBinary.OpenInMemory(b.Label, b.Bytes, b.Bytes.Length);
            Assert.NotEmpty(mem.Probes);
            Assert.Equal(disk.Probes.Select(p => p.Id), mem.Probes.Select(p => p.Id));
            Assert.Equal(disk.Probes.SelectMany(p => p.Sites).Select(s => (s.FileOffset, s.SemaphoreFileOffset, s.ArgumentText)),
                mem.Probes.SelectMany(p => p.Sites).Select(s => (s.FileOffset, s.SemaphoreFileOffset, s.ArgumentText)));
            Assert.Null(Invariants.CheckBinary(mem, b.Bytes.Length));
            var note = mem.Elf.FindSection(".note.stapsdt")!;
            Assert.Equal(b.Bytes.AsSpan((int)note.FileOffset, (int)note.Size).ToArray(), mem.Elf.ReadSection(note));
            output.WriteLine($"{b.Label}: {b.Bytes.Length:N0} bytes, {mem.Probes.Count} probes, {mem.Probes.Sum(p => p.Sites.Count)} sites");
        }
    }

    /// <summary>Null if opening the mutated image behaved, else a complaint.</summary>
    internal static string? RunCase(MutableImage img)
    {
        string label = img.Source.Label + "(mutated)";
        try
        {
            var b = UsdtBinary.OpenInMemory(label, img.Data, img.Length);
            return Invariants.CheckBinary(b, img.Length);
        }
        catch (UsdtArgumentException e)
        {
            return e.Message.Length > 0 ? null : "empty message";
        }
        catch (UsdtException e)
        {
            return e.Message.Contains(label, StringComparison.Ordinal) ? null : $"message does not name the file: {e.Message}";
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
    }

    internal static string Describe(IReadOnlyList<RealBinary> inputs, ulong seed, int index, out MutableImage img)
    {
        var b = inputs[index % inputs.Count];
        img = new MutableImage(b);
        var r = new Rng(seed, 2, (ulong)index);
        return $"{b.Label} case {index}: {Mutator.Apply(ref r, img)}";
    }

    [Fact]
    public void MutatedRealBinaries_OpenSanelyOrFailWithUsdtException()
    {
        var inputs = RealBinaries.Get(output);
        ulong seed = Torture.Seed;
        int total = Torture.Scale(20_400);
        int workers = Math.Max(2, Environment.ProcessorCount);
        var current = new string[workers];
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long slowestTicks = 0;
        string slowestCase = "";
        var outcomes = new int[2]; // opened, rejected
        var sw = Stopwatch.StartNew();

        Torture.RunWithTimeout(TimeSpan.FromSeconds(Torture.Long ? 1800 : 90),
            () => string.Join(" | ", current.Where(c => c is not null)),
            token => Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                // One private copy of each input per worker; mutations are undone after each case.
                var images = inputs.Select(b => new Lazy<MutableImage>(() => new MutableImage(b))).ToArray();
                for (int i = w; i < total && !token.IsCancellationRequested; i += workers)
                {
                    var img = images[i % inputs.Count].Value;
                    var r = new Rng(seed, 2, (ulong)i);
                    string what = $"{img.Source.Label} case {i}: {Mutator.Apply(ref r, img)}";
                    current[w] = what;
                    long t0 = Stopwatch.GetTimestamp();
                    string? problem = RunCase(img);
                    long dt = Stopwatch.GetTimestamp() - t0;
                    lock (outcomes)
                    {
                        if (dt > slowestTicks) { slowestTicks = dt; slowestCase = what; }
                    }
                    if (problem is null && Stopwatch.GetElapsedTime(0, dt) > CaseLimit)
                    {
                        // A parser hang is deterministic; a scheduling or GC stall on a loaded
                        // 2-core machine is not: time the same case once more before failing.
                        long t1 = Stopwatch.GetTimestamp();
                        RunCase(img);
                        var again = Stopwatch.GetElapsedTime(t1);
                        if (again > CaseLimit)
                            problem = $"took {Stopwatch.GetElapsedTime(0, dt).TotalSeconds:0.0} s and {again.TotalSeconds:0.0} s";
                    }
                    if (problem is not null && failures.Count < 20)
                        failures.Enqueue($"seed 0x{seed:x} {what} -> {problem}");
                    img.Reset();
                }
            }));
        sw.Stop();
        Torture.Report(output, "mutated binaries", total, sw, Stopwatch.GetElapsedTime(0, slowestTicks), slowestCase);
        Assert.True(failures.IsEmpty, $"{failures.Count} failing case(s):\n" + string.Join("\n", failures));
    }
}
