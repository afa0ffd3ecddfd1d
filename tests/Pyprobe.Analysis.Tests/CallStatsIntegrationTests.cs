using Pyprobe.Python.Analysis;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Analysis.Tests;

/// <summary>
/// In-kernel call statistics on real interpreters. The workload's script starts at line 4 of its -c
/// program (three lines of handshake come first), so a def on the script's first line reports line 4.
/// </summary>
public class CallStatsIntegrationTests
{
    private const string Fib = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nfib(18)\n";

    private static (CallStats Stats, CallStatsSession Session) Run(string version, string script, CallStatsOptions? options = null, Action<CallStatsSession>? check = null)
    {
        AnalysisRequirements.EnsureRoot();
        var python = AnalysisPythons.Get(version);
        AnalysisRequirements.EnsureFile(python.Launcher);
        using var workload = new Pyprobe.Python.Tests.PythonWorkload(python.Launcher, script);
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        Assert.Equal(version, $"{targets[0].Version!.Major}.{targets[0].Version!.Minor}");
        var session = CallStatsSession.Attach(targets, options);
        try
        {
            check?.Invoke(session);
            workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
            session.Detach();
            var stats = session.Snapshot();
            Assert.Equal(0UL, stats.LostNameRecords);
            Assert.Equal(0UL, stats.StatsMapFull);
            Assert.Equal(0UL, stats.NoStackSlot);
            return (stats, session);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static FunctionStats Single(CallStats stats, string funcname)
    {
        var rows = stats.Functions.Where(f => f.Funcname == funcname).ToList();
        Assert.True(rows.Count == 1, $"expected one row for {funcname}, got {rows.Count}: {string.Join("; ", stats.Functions.Select(Describe))}");
        return rows[0];
    }

    /// <summary>The kernel's bucket choice agrees with <see cref="CallStatsLayout"/>: every used bucket overlaps [min, max].</summary>
    private static void AssertHistogramMatchesRange(FunctionStats f)
    {
        Assert.Equal(f.TimedCount, (ulong)f.Histogram.Sum(x => (long)x));
        for (var i = 0; i < f.Histogram.Count; i++)
        {
            if (f.Histogram[i] == 0) continue;
            Assert.True(CallStatsLayout.BucketUpperBound(i) > f.MinNs && CallStatsLayout.BucketLowerBound(i) <= f.MaxNs,
                $"bucket {i} [{CallStatsLayout.BucketLowerBound(i)}, {CallStatsLayout.BucketUpperBound(i)}) lies outside [{f.MinNs}, {f.MaxNs}]");
        }
        Assert.True(f.Histogram[CallStatsLayout.BucketIndex(f.MinNs!.Value)] > 0, "the minimum's bucket is empty");
        Assert.True(f.Histogram[CallStatsLayout.BucketIndex(f.MaxNs!.Value)] > 0, "the maximum's bucket is empty");
    }

    private static string Describe(FunctionStats f) => $"{f.Filename}:{f.Funcname}:{f.Lineno} n={f.Count} timed={f.TimedCount}";

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void FibEighteenIsExactWithTimes(string version)
    {
        var (stats, session) = Run(version, Fib);
        using (session)
        {
            Assert.All(session.Targets, t => Assert.True(t.Timed));
            Assert.Equal(version == "3.11", session.Targets[0].Gated);
            var fib = Single(stats, "fib");
            Assert.EndsWith("<string>", fib.Filename);
            Assert.Equal(4, fib.Lineno);
            Assert.Equal(8361UL, fib.Count);
            Assert.Equal(8361UL, fib.TimedCount);
            Assert.Null(fib.UntimedReason);
            AssertHistogramMatchesRange(fib);
            Assert.True(fib.MinNs > 0 && fib.MinNs <= fib.P50Ns && fib.P50Ns <= fib.P90Ns && fib.P90Ns <= fib.P99Ns && fib.P99Ns <= fib.MaxNs,
                $"min {fib.MinNs} p50 {fib.P50Ns} p90 {fib.P90Ns} p99 {fib.P99Ns} max {fib.MaxNs}");
            // Inclusive time of the outermost call is the largest; self time of all calls adds up to at most that.
            Assert.True(fib.SelfNs <= fib.MaxNs, $"self {fib.SelfNs} > max {fib.MaxNs}");
            Assert.True(fib.TotalNs > fib.MaxNs);
            Assert.Equal(0UL, stats.UnmatchedReturns);
            Assert.Equal(0UL, stats.OverflowEntries);
        }
    }

    [Fact]
    public void Python311WithoutGateCountsReturnsAndSaysWhyTimesAreMissing()
    {
        var (stats, session) = Run("3.11", Fib, new CallStatsOptions(EntryGate: false));
        using (session)
        {
            var target = Assert.Single(session.Targets);
            Assert.False(target.Timed);
            Assert.False(target.Gated);
            Assert.Contains("3.11", target.UntimedReason);
            var fib = Single(stats, "fib");
            Assert.Equal(8361UL, fib.Count);
            Assert.Equal(0UL, fib.TimedCount);
            Assert.False(fib.HasTimes);
            Assert.Null(fib.Lineno);
            Assert.Null(fib.TotalNs);
            Assert.Null(fib.MeanNs);
            Assert.Null(fib.P50Ns);
            Assert.Equal(target.UntimedReason, fib.UntimedReason);
        }
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void SleepingFunctionHasRealDurations(string version)
    {
        const string script = "import time\ndef nap():\n    time.sleep(0.05)\nfor _ in range(4):\n    nap()\n";
        var (stats, session) = Run(version, script);
        using (session)
        {
            var nap = Single(stats, "nap");
            Assert.Equal(5, nap.Lineno);
            Assert.Equal(4UL, nap.Count);
            Assert.Equal(4UL, nap.TimedCount);
            Assert.InRange(nap.MeanNs!.Value, 50e6, 80e6);
            Assert.True(nap.MinNs >= 50_000_000UL, $"min {nap.MinNs}");
            AssertHistogramMatchesRange(nap);
            Assert.True(nap.MaxNs < 1_000_000_000UL, $"max {nap.MaxNs}");
            Assert.InRange(nap.P50Ns!.Value, 50_000_000UL, nap.MaxNs!.Value);
            // time.sleep is C code: the whole duration is nap's own time.
            Assert.True(nap.SelfNs >= 200_000_000UL, $"self {nap.SelfNs}");
        }
    }

    [Fact]
    public void GeneratorOn39KeepsTheStackBalanced()
    {
        const string script =
            "def gen():\n" +              // line 4
            "    for i in range(5):\n" +
            "        yield i\n" +         // line 6
            "def after(x):\n" +           // line 7
            "    return x + 1\n" +
            "total = sum(gen())\n" +
            "for i in range(10):\n" +
            "    after(i)\n";
        var (stats, session) = Run("3.9", script);
        using (session)
        {
            // 5 yields + the final resume that returns: 6 resumes, each an entry and a return. The probe reports the
            // line each resume starts at (4, then 6); the row is the code object's, at its first line.
            var gen = Single(stats, "gen");
            Assert.Equal(4, gen.Lineno);
            Assert.Equal(6UL, gen.Count);
            Assert.Equal(6UL, gen.TimedCount);
            var after = Single(stats, "after");
            Assert.Equal(7, after.Lineno);
            Assert.Equal(10UL, after.Count);
            Assert.Equal(10UL, after.TimedCount);
            Assert.Equal(0UL, stats.UnmatchedReturns);
            Assert.Equal(0UL, stats.DiscardedFrames);
        }
    }

    [Fact]
    public void Generators315CreationAndThrowDoNotCorruptLaterCounts()
    {
        const string script =
            "def gen():\n" +              // line 4
            "    try:\n" +
            "        yield 1\n" +
            "        yield 2\n" +
            "    except ValueError:\n" +
            "        yield 3\n" +
            "def after(x):\n" +           // line 10
            "    return x + 1\n" +
            "def work():\n" +             // line 12
            "    g = gen()\n" +
            "    next(g)\n" +
            "    g.throw(ValueError)\n" +
            "    for i in range(10):\n" +
            "        after(i)\n" +
            "    return 0\n" +
            "def make():\n" +             // line 19
            "    g = gen()\n" +
            "    return after(0)\n" +
            "for _ in range(3):\n" +
            "    work()\n" +
            "    make()\n";
        var (stats, session) = Run("3.15", script);
        using (session)
        {
            var after = Single(stats, "after");
            Assert.Equal(33UL, after.Count);
            Assert.Equal(33UL, after.TimedCount);
            var work = Single(stats, "work");
            Assert.Equal(12, work.Lineno);
            Assert.Equal(3UL, work.Count);
            Assert.Equal(3UL, work.TimedCount);
            var make = Single(stats, "make");
            Assert.Equal(3UL, make.Count);
            Assert.Equal(3UL, make.TimedCount);
            // make(): its generator's creation ENTRY never returns; it is discarded when make() returns past it.
            Assert.Equal(3UL, stats.DiscardedFrames);
            // work(): the creation ENTRY is what throw()'s RET pops (3.15 has no ENTRY on throw), and closing the
            // suspended generator when work() returns is a RET without ENTRY: counted, untimed.
            Assert.Equal(3UL, stats.UnmatchedReturns);
            var gen = Single(stats, "gen");
            Assert.Equal(9UL, gen.Count);
            Assert.Equal(6UL, gen.TimedCount);
            Assert.NotNull(gen.UntimedReason);
        }
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void RecursionDeeperThanTheStackDoesNotCorruptLaterStats(string version)
    {
        const string script =
            "def rec(n):\n" +             // line 4
            "    return 0 if n == 0 else rec(n - 1) + 1\n" +
            "def leaf():\n" +             // line 6
            "    return 1\n" +
            "rec(100)\n" +
            "for _ in range(7):\n" +
            "    leaf()\n" +
            "rec(10)\n";
        var (stats, session) = Run(version, script, new CallStatsOptions(MaxFrames: 64));
        using (session)
        {
            var rec = Single(stats, "rec");
            Assert.Equal(4, rec.Lineno);
            Assert.Equal(101UL + 11UL, rec.Count);
            Assert.Equal(64UL + 11UL, rec.TimedCount); // frames 0..63 of the deep call, then all of rec(10)
            Assert.NotNull(rec.UntimedReason);
            Assert.Equal(37UL, stats.OverflowEntries);
            var leaf = Single(stats, "leaf");
            Assert.Equal(7UL, leaf.Count);
            Assert.Equal(7UL, leaf.TimedCount);
            Assert.Null(leaf.UntimedReason);
        }
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void NamesAreCorrectAcrossFiles(string version)
    {
        var dir = Directory.CreateTempSubdirectory("pyprobe-calls-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "othermod.py"), "# helper module\n\ndef helper(x):\n    return x * 2\n\nclass K:\n    def method(self):\n        return helper(1)\n");
            var script =
                $"sys.path.insert(0, {PythonString(dir.FullName)})\n" +
                "import othermod\n" +
                "def local(x):\n" +           // line 6
                "    return othermod.helper(x)\n" +
                "for i in range(3):\n" +
                "    local(i)\n" +
                "othermod.K().method()\n";
            var (stats, session) = Run(version, script);
            using (session)
            {
                var helper = Single(stats, "helper");
                Assert.Equal(Path.Combine(dir.FullName, "othermod.py"), helper.Filename);
                Assert.Equal(3, helper.Lineno);
                Assert.Equal(4UL, helper.Count);
                Assert.Equal(4UL, helper.TimedCount);
                // Keyed by the code object: its qualified name where it has one (3.11+; the probes say co_name).
                var method = Single(stats, version == "3.9" ? "method" : "K.method");
                Assert.Equal(helper.Filename, method.Filename);
                Assert.Equal(7, method.Lineno);
                Assert.Equal(1UL, method.Count);
                // Module code and a class body at their first lines (the probes say 0 for the module on 3.11 and 3.15,
                // -1 for the class body on 3.15).
                var module = Assert.Single(stats.Functions, f => f.Funcname == "<module>" && f.Filename == helper.Filename);
                Assert.Equal(version == "3.9" ? 3 : 1, module.Lineno); // 3.9's co_firstlineno is the first statement's
                Assert.Equal(1UL, module.Count);
                Assert.Equal(6, Single(stats, "K").Lineno);
                var local = Single(stats, "local");
                Assert.EndsWith("<string>", local.Filename);
                Assert.Equal(6, local.Lineno);
                Assert.Equal(3UL, local.Count);
                // local's self time excludes helper's calls.
                Assert.True(local.SelfNs < local.TotalNs);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void ResetClearsStatistics()
    {
        var (stats, session) = Run("3.9", Fib);
        using (session)
        {
            Assert.Equal(8361UL, Single(stats, "fib").Count);
            session.Reset();
            Assert.Empty(session.Snapshot().Functions);
        }
    }

    [Fact]
    public void SnapshotLeavesTotalsAndTakeIntervalClearsThem()
    {
        var (stats, session) = Run("3.9", Fib);
        using (session)
        {
            // Cumulative reads: an exporter reads the same totals again and again.
            Assert.Equal(8361UL, Single(stats, "fib").Count);
            var again = Single(session.Snapshot(), "fib");
            Assert.Equal(8361UL, again.Count);
            Assert.Equal(Single(stats, "fib").TotalNs, again.TotalNs);
            // An interval takes what was counted and leaves nothing behind.
            Assert.Equal(8361UL, Single(session.TakeInterval(), "fib").Count);
            Assert.Empty(session.Snapshot().Functions);
            Assert.Empty(session.TakeInterval().Functions);
        }
    }

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void CountsAloneAreExactAndReadAgainOrByInterval(string version)
    {
        var (stats, session) = Run(version, Fib, new CallStatsOptions(Timed: false));
        using (session)
        {
            var fib = Single(stats, "fib");
            Assert.Equal(8361UL, fib.Count);
            Assert.Equal(0UL, fib.TimedCount);
            Assert.Null(fib.TotalNs);
            Assert.Equal(8361UL, Single(session.Snapshot(), "fib").Count);
            Assert.Equal(8361UL, Single(session.TakeInterval(), "fib").Count);
            Assert.Empty(session.Snapshot().Functions);
        }
    }

    private static string PythonString(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'";
}

/// <summary>
/// Calls whose function the kernel cannot put in its table (here a table of 4 entries, as a stand-in for the
/// moments its allocator has no memory) still count: they travel to user space with their names.
/// </summary>
public class CallStatsTableFallbackTests
{
    // Named f0..f39 by co_name and, where code objects have one (3.11+), co_qualname: rows are keyed by the latter.
    private const string FortyFunctions = "import types\nc = (lambda: None).__code__\nq = lambda i: {'co_qualname': f'f{i}'} if hasattr(c, 'co_qualname') else {}\nfns = [types.FunctionType(c.replace(co_name=f'f{i}', co_firstlineno=100 + i, **q(i)), {}) for i in range(40)]\nfor i, f in enumerate(fns):\n    for _ in range(i + 1):\n        f()\n";

    /// <summary>Timed (a per-CPU table) and counted alone (a plain hash of the calls counter) alike.</summary>
    [Theory]
    [InlineData("3.9", true)]
    [InlineData("3.15", true)]
    [InlineData("3.9", false)]
    [InlineData("3.15", false)]
    public void CallsBeyondTheKernelsTableAreCountedExactly(string version, bool timed)
    {
        AnalysisRequirements.EnsureRoot();
        var python = AnalysisPythons.Get(version);
        AnalysisRequirements.EnsureFile(python.Launcher);
        using var workload = new Pyprobe.Python.Tests.PythonWorkload(python.Launcher, FortyFunctions);
        using var session = CallStatsSession.Attach(TargetResolver.ForProcesses([workload.Pid]), new CallStatsOptions(MaxFunctions: 4, Timed: timed));
        workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
        session.Detach();
        var stats = session.Snapshot();
        Assert.Equal(0UL, stats.StatsMapFull);
        for (var i = 0; i < 40; i++)
        {
            var row = Assert.Single(stats.Functions, f => f.Funcname == $"f{i}");
            Assert.Equal((ulong)(i + 1), row.Count);
            Assert.Equal(timed ? (ulong)(i + 1) : 0UL, row.TimedCount);
            if (!timed) continue;
            Assert.Equal(100 + i, row.Lineno);
            Assert.Equal(row.TimedCount, (ulong)row.Histogram.Sum(x => (long)x));
        }
    }
}
