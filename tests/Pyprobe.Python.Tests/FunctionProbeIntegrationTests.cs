using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Python.Tests;

/// <summary>
/// Exact function-probe counts on every CPython whose function probes fire: fib(18) makes 8361 calls.
/// </summary>
public class FunctionProbeIntegrationTests
{
    private const string Fib = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nfib(18)\n";

    [Theory]
    [InlineData("3.9", true, 8361)]
    [InlineData("3.11", true, 8361)]
    [InlineData("3.11", false, 0)]
    [InlineData("3.15", true, 8361)]
    public void FibEighteenGivesExactEntryAndReturnCounts(string version, bool entryGate, int expectedEntries)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        using var workload = new PythonWorkload(python.Launcher, Fib);
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        Assert.Equal(version, $"{targets[0].Version!.Major}.{targets[0].Version!.Minor}");

        var counts = new Dictionary<string, int>();
        var lines = new HashSet<long>();
        var probes = new[] { PythonProbeCatalog.Find("function__entry")!, PythonProbeCatalog.Find("function__return")! };
        using (var session = TraceSession.Attach(targets, probes, new TraceSessionOptions(EntryGate: entryGate, AllowHookWrite: false)))
        {
            Assert.Equal(entryGate && version == "3.11" ? 1 : 0, session.GatedTargets.Count);
            workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
            session.Detach();
            while (session.Reader.Drain(record =>
            {
                var e = session.Decode(record);
                if (e.String(1) != "fib") return;
                Assert.EndsWith("<string>", e.String(0));
                counts[e.Name] = counts.GetValueOrDefault(e.Name) + 1;
                if (e.Name == "function__entry") lines.Add(e.Value(2));
            }) > 0) { }
            Assert.Equal(0UL, session.Lost);
        }

        Assert.Equal(expectedEntries, counts.GetValueOrDefault("function__entry"));
        Assert.Equal(8361, counts.GetValueOrDefault("function__return"));
        if (expectedEntries > 0) Assert.Equal(new long[] { 4 }, lines); // entry reports the def line (line 4 of the -c script)
    }
}
