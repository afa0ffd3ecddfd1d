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
    [Theory]
    [InlineData("debian:3.9")]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void EveryRoundIsARowOfItsOwn(string interpreter)
    {
        using var target = EvalFrameTraceTests.StartScript(ReuseWorkload.Script, interpreter);
        using var json = new TempFile();
        using var calls = AttachedTracer.Start(["calls", "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--format", "json", "-o", json.Path], out _);
        target.Go();
        ReuseWorkload.AssertAddressesWereReused(target.ReadLine());
        AttachedTracer.Signal(calls.Id, "INT");
        var (exit, _, stderr) = AttachedTracer.Finish(calls, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Contains("901 calls counted in the kernel", stderr); // 300 modules, 600 function calls, and codecs decode() reading "go"

        var rows = JsonDocument.Parse(File.ReadAllText(json.Path)).RootElement.EnumerateArray()
            .GroupBy(row => (row.GetProperty("filename").GetString()!, row.GetProperty("funcname").GetString()!))
            .Select(g => KeyValuePair.Create(g.Key, g.Sum(row => row.GetProperty("count").GetInt64())));
        ReuseWorkload.AssertEveryRoundExact(ReuseWorkload.Generated(rows), "calls");
    }
}
