using Pyprobe.Python.Analysis;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Analysis.Tests;

/// <summary>
/// The kernel's function table is sized by what is traced: a hash's buckets are made for its most entries when it is
/// made, so a running process gets 16,384 (a quarter of the cost) and a command or a binary's every process 65,536.
/// Calls beyond the table still count (<see cref="CallStatsTableFallbackTests"/>).
/// </summary>
public class CallStatsTableSizeTests
{
    [Fact]
    public void TheTableFollowsTheTargets()
    {
        AnalysisRequirements.EnsureRoot();
        var python = AnalysisPythons.Get("3.9");
        AnalysisRequirements.EnsureFile(python.Launcher);
        using var workload = new Pyprobe.Python.Tests.PythonWorkload(python.Launcher, "pass\n");
        var one = Assert.Single(TargetResolver.ForProcesses([workload.Pid]));
        var defaults = new CallStatsOptions();
        Assert.Equal(16384u, CallStatsSession.FunctionCapacity(defaults, [one]));
        Assert.Equal(32768u, CallStatsSession.FunctionCapacity(defaults, [one with { Pids = [workload.Pid, workload.Pid + 1] }]));
        Assert.Equal(65536u, CallStatsSession.FunctionCapacity(defaults, [one with { Pids = Enumerable.Range(1, 9).ToList() }]));
        Assert.Equal(65536u, CallStatsSession.FunctionCapacity(defaults, [one with { Pids = [] }]));
        Assert.Equal(65536u, CallStatsSession.FunctionCapacity(defaults with { TargetsHeld = true }, [one]));
        Assert.Equal(100u, CallStatsSession.FunctionCapacity(defaults with { MaxFunctions = 100 }, [one with { Pids = [] }]));

        // And the map the session makes for a running process is that size (read back from the kernel).
        // A plain hash, one value for every CPU (a per-CPU one would take the value's size times the CPUs a function).
        using (CallStatsSession.Attach([one]))
        {
            Assert.Equal([16384u], StatsTableSizes(Hash, CallStatsLayout.StatsValueSize));
            Assert.Empty(StatsTableSizes(PerCpuHash, CallStatsLayout.StatsValueSize));
        }
        // Counts alone: the calls counter alone.
        using (CallStatsSession.Attach([one], defaults with { Timed = false }))
            Assert.Equal([16384u], StatsTableSizes(Hash, CallStatsLayout.CountsValueSize));
    }

    private const int Hash = 1, PerCpuHash = 5;

    /// <summary>max_entries of this process's maps of that type with that value size (/proc/self/fdinfo).</summary>
    private static List<uint> StatsTableSizes(int mapType, int valueSize)
    {
        var sizes = new List<uint>();
        foreach (var fdinfo in Directory.GetFiles("/proc/self/fdinfo"))
        {
            string[] lines;
            try { lines = File.ReadAllLines(fdinfo); } catch (IOException) { continue; }
            string? Field(string name) => lines.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?[(name.Length + 1)..].Trim();
            if (Field("map_type") == mapType.ToString(System.Globalization.CultureInfo.InvariantCulture) && Field("value_size") == valueSize.ToString(System.Globalization.CultureInfo.InvariantCulture)
                && Field("key_size") == CallStatsLayout.KeySize.ToString(System.Globalization.CultureInfo.InvariantCulture))
                sizes.Add(uint.Parse(Field("max_entries")!, System.Globalization.CultureInfo.InvariantCulture));
        }
        return sizes;
    }
}
