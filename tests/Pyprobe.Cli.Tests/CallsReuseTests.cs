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
    /// <remarks>
    /// With names that are not ASCII (<paramref name="wide"/>) the kernel keys a USDT row by the str's cached UTF-8 copy
    /// and an eval-frame row by the str's characters, and both must move on where the code object dies; an eval-frame
    /// row's names travel as CPython holds them (one, two or four bytes a character) and must come out as the same text.
    /// </remarks>
    [Theory]
    [InlineData("debian:3.9", false)]
    [InlineData("debian:3.11", false)]
    [InlineData("pyenv:3.12.1", false)]
    [InlineData("debian:3.14", false)]
    [InlineData("debian:3.15", false)]
    [InlineData("debian:3.9", true)]
    [InlineData("debian:3.11", true)]
    [InlineData("pyenv:3.9.18", true)]
    [InlineData("pyenv:3.12.1", true)]
    [InlineData("debian:3.13", true)]
    [InlineData("debian:3.14", true)]
    [InlineData("debian:3.15", true)]
    public void EveryRoundIsARowOfItsOwn(string interpreter, bool wide)
    {
        using var target = ReuseWorkload.Start(interpreter, wide);
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
        ReuseWorkload.AssertEveryRoundExact(ReuseWorkload.Generated(rows), "calls", wide);
    }
}
