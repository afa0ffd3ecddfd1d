using System.Globalization;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The memos of names where code objects and strs are freed and their addresses reused — the eval-frame programs'
/// (CodeObjectMemo, every version) and the USDT function probes' name pairs (FunctionNamePairs: Debian 3.9, 3.11 and 3.15,
/// whose function events come from USDT): a workload compiles and runs, round after round, a function with a name and a
/// file of its own (Workloads/eval_frame_reuse.py), and every event must carry its own round's name and file, exactly as
/// often as the round ran it, in every output that decodes the records (JSON, text, a raw capture converted later).
/// </summary>
public partial class EvalFrameMemoTests
{

    private static readonly string[] Pythons = ["pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0", "debian:3.13", "debian:3.14", "debian:3.9", "debian:3.11", "debian:3.15"];

    /// <summary>Every interpreter with ASCII names and with names that are not (see <see cref="ReuseWorkload.Names"/>).</summary>
    public static TheoryData<string, bool> Interpreters
    {
        get
        {
            var data = new TheoryData<string, bool>();
            foreach (var python in Pythons)
            {
                data.Add(python, false);
                data.Add(python, true);
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void EveryEventOfAReusedAddressNamesItsOwnRound(string interpreter, bool wide)
    {
        using var target = ReuseWorkload.Start(interpreter, wide);
        using var json = new TempFile();
        using var text = new TempFile();
        var pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        var tracers = new[]
        {
            AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", pid, "--duration", "60"], out _),
            AttachedTracer.Start(["trace", "function__entry", "function__return", "--time", "none", "-o", text.Path, "-p", pid, "--duration", "60"], out _),
        };
        target.Go();
        ReuseWorkload.AssertAddressesWereReused(target.ReadLine());
        foreach (var tracer in tracers) AttachedTracer.Signal(tracer.Id, "INT");
        foreach (var tracer in tracers)
        {
            var (exit, _, stderr) = AttachedTracer.Finish(tracer, TimeSpan.FromSeconds(60));
            Assert.True(exit == 0, stderr);
            Assert.Contains(", 0 lost", stderr);
        }
        AssertEveryRoundExact(JsonCounts(new TraceOutput(File.ReadAllText(json.Path))), wide);
        AssertEveryRoundExact(TextCounts(File.ReadAllLines(text.Path)), wide);
    }

    /// <summary>A raw capture holds records that only name strings another record carries: convert resolves them from the capture alone.</summary>
    [Theory]
    [InlineData("pyenv:3.12.1", false)]
    [InlineData("debian:3.14", false)]
    [InlineData("debian:3.9", false)]
    [InlineData("debian:3.15", false)]
    [InlineData("pyenv:3.12.1", true)]
    public void RawCaptureConvertsEveryRoundExactly(string interpreter, bool wide)
    {
        using var target = ReuseWorkload.Start(interpreter, wide);
        using var raw = new TempFile();
        using var converted = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "raw", "-o", raw.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "60"], out _);
        target.Go();
        ReuseWorkload.AssertAddressesWereReused(target.ReadLine());
        AttachedTracer.Interrupt(trace);
        // The workload is gone before convert runs: nothing can be read back from it.
        target.Dispose();
        var convert = PyprobeBinary.Run("convert", raw.Path, "--format", "json", "-o", converted.Path);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        AssertEveryRoundExact(JsonCounts(new TraceOutput(File.ReadAllText(converted.Path))), wide);
    }

    /// <summary>
    /// Subinterpreters made and destroyed one after another: on 3.14 each round's function has the address of the last
    /// round's (and from 3.13 the same co_version, each interpreter counting from its start); the memo dropped the last
    /// one's entry where its code object died: every round's name, exactly.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("pyenv:3.13.0")]
    [InlineData("debian:3.14")]
    public void EachNewSubinterpreterNamesItsOwnFunctions(string interpreter)
    {
        const int rounds = 20;
        var workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "subinterpreter_rounds.py");
        using var target = EvalFrameTraceTests.StartScript(workload, interpreter);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "60"], out _);
        target.Go();
        var codes = new List<string>();
        for (var line = target.ReadLine(); line != "done"; line = target.ReadLine())
        {
            Assert.NotNull(line);
            codes.Add(line);
        }
        Assert.Equal(rounds, codes.Count);
        if (interpreter == "debian:3.14") Assert.True(codes.Distinct().Count() < rounds, "no address came back: the test proves nothing here");
        var counts = JsonCounts(StopAndRead(trace, json));
        foreach (var probe in new[] { "function__entry", "function__return" })
        {
            for (var k = 0; k < rounds; k++)
                Assert.True(counts.Where(c => c.Key.Probe == probe && c.Key.Name == $"sub{k:000}").Sum(c => c.Value) == 3, $"{probe} sub{k:000}: {counts.Where(c => c.Key.Probe == probe && c.Key.Name == $"sub{k:000}").Sum(c => c.Value)}");
            Assert.Equal(3 * rounds, counts.Where(c => c.Key.Probe == probe && c.Key.Name.StartsWith("sub", StringComparison.Ordinal)).Sum(c => c.Value));
        }
    }

    /// <summary>
    /// Names about the memo's hashing limit (BytesFingerprint.MaxHashedLength, 512 bytes): a file name of 511, 512 and 513
    /// bytes and a 600-byte function name, each function called 3 times: a name at the limit is remembered, one past it
    /// is copied whole with every event; either way every event carries it whole.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.9.18")]
    [InlineData("debian:3.14")]
    public void NamesAboutTheHashingLimitAreWholeInEveryEvent(string interpreter)
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, """
            import sys
            print("ready", flush=True)
            sys.stdin.readline()
            for filename, name in [("/" + "a" * 510, "f511"), ("/" + "b" * 511, "f512"), ("/" + "c" * 512, "f513"), ("/long.py", "g" * 600)]:
                namespace = {}
                exec(compile("def %s():\n    return 1\n" % name, filename, "exec"), namespace)
                for _ in range(3):
                    namespace[name]()
            print("done", flush=True)
            sys.stdin.readline()
            """);
        using var target = EvalFrameTraceTests.StartScript(script.Path, interpreter);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "60"], out _);
        target.Go();
        Assert.Equal("done", target.ReadLine());
        var counts = JsonCounts(StopAndRead(trace, json));
        foreach (var probe in new[] { "function__entry", "function__return" })
        {
            Assert.Equal(3, counts.GetValueOrDefault((probe, "f511", "/" + new string('a', 510))));
            Assert.Equal(3, counts.GetValueOrDefault((probe, "f512", "/" + new string('b', 511))));
            Assert.Equal(3, counts.GetValueOrDefault((probe, "f513", "/" + new string('c', 512))));
            Assert.Equal(3, counts.GetValueOrDefault((probe, new string('g', 600), "/long.py")));
        }
    }

    /// <summary>Ctrl-C to the tracer; it must end cleanly with nothing lost; the JSON it wrote.</summary>
    private static TraceOutput StopAndRead(System.Diagnostics.Process trace, TempFile json)
    {
        AttachedTracer.Interrupt(trace);
        return new TraceOutput(File.ReadAllText(json.Path));
    }

    /// <summary>Entries and returns alike: <see cref="ReuseWorkload.AssertEveryRoundExact"/>.</summary>
    private static void AssertEveryRoundExact(Dictionary<(string Probe, string Name, string File), int> counts, bool wide)
    {
        foreach (var probe in new[] { "function__entry", "function__return" })
            ReuseWorkload.AssertEveryRoundExact(
                ReuseWorkload.Generated(counts.Where(c => c.Key.Probe == probe).Select(c => KeyValuePair.Create((c.Key.File, c.Key.Name), (long)c.Value))), probe, wide);
    }

    private static Dictionary<(string Probe, string Name, string File), int> JsonCounts(TraceOutput output) =>
        output.Events.GroupBy(e => (e.GetProperty("probe").GetString()!, e.GetProperty("funcname").GetString()!, e.GetProperty("filename").GetString()!))
            .ToDictionary(g => g.Key, g => g.Count());

    private static Dictionary<(string Probe, string Name, string File), int> TextCounts(string[] lines) =>
        lines.Select(l => TextEvent().Match(l)).Where(m => m.Success)
            .GroupBy(m => (m.Groups["probe"].Value, m.Groups["name"].Value, m.Groups["file"].Value))
            .ToDictionary(g => g.Key, g => g.Count());

    [GeneratedRegex(@"^(?<probe>function__\w+) .*filename=(?<file>[^,]*), funcname=(?<name>[^,]*), ")]
    private static partial Regex TextEvent();
}
