using System.Globalization;
using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `calls` where code objects are freed and new ones made at their addresses, with names at their names' addresses
/// (Workloads/eval_frame_reuse.py: round i compiles a module of its own file with a function of its own name, runs it
/// once and calls the function i % 3 + 1 times). Rows are keyed in the kernel by the names' addresses; without the
/// uprobe where code objects die (CallStatsProgram.ForgetProgram) every round after the first added its calls to the
/// first rounds' rows under their names. Each round's function and module must be a row of its own, exactly, from
/// every source: USDT (Debian 3.9, 3.11 with the entry gate, 3.15) and _PyEval_EvalFrameDefault (pyenv 3.12, Debian 3.14).
/// </summary>
public class CallsReuseTests
{
    private const int Rounds = 300;
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "eval_frame_reuse.py");

    [Theory]
    [InlineData("debian:3.9")]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EveryRoundIsARowOfItsOwn(string interpreter)
    {
        using var target = EvalFrameTraceTests.StartScript(Workload, interpreter);
        using var json = new TempFile();
        using var calls = AttachedTracer.Start(["calls", "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--format", "json", "-o", json.Path], out _);
        target.Go();
        var ids = target.ReadLine();
        Assert.NotNull(ids);
        Assert.True(ids["ids ".Length..].Split(' ').Distinct().Count() < Rounds, "no code object address was reused: the workload proves nothing");
        AttachedTracer.Signal(calls.Id, "INT");
        var (exit, _, stderr) = AttachedTracer.Finish(calls, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Contains("901 calls counted in the kernel", stderr); // 300 modules, 600 function calls, and codecs decode() reading "go"

        var counts = new Dictionary<(string File, string Func), long>();
        foreach (var row in JsonDocument.Parse(File.ReadAllText(json.Path)).RootElement.EnumerateArray())
        {
            var key = (row.GetProperty("filename").GetString()!, row.GetProperty("funcname").GetString()!);
            if (key.Item1.StartsWith("/generated/", StringComparison.Ordinal)) counts[key] = counts.GetValueOrDefault(key) + row.GetProperty("count").GetInt64();
        }
        var expected = 0L;
        for (var i = 0; i < Rounds; i++)
        {
            var file = $"/generated/round_{i}.py";
            var name = $"r{i}_{new string('x', i % 7)}";
            Assert.True(counts.GetValueOrDefault((file, name)) == i % 3 + 1, $"{name} in {file}: {counts.GetValueOrDefault((file, name))}, expected {i % 3 + 1}");
            Assert.True(counts.GetValueOrDefault((file, "<module>")) == 1, $"<module> in {file}: {counts.GetValueOrDefault((file, "<module>"))}");
            expected += i % 3 + 2;
        }
        Assert.Equal(2 * Rounds, counts.Count);
        Assert.Equal(expected, counts.Values.Sum());
    }
}
