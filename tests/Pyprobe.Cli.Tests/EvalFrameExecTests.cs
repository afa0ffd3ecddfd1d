using System.Globalization;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The eval-frame programs' memo of names across an exec: a traced process replaces its image with the same
/// interpreter running the same script (Workloads/eval_frame_exec.py), keeping its pid, twice (w → a → b). With ASLR
/// off images a and b allocate the same code objects and strs at the same addresses, with the same co_version values,
/// and only the names differ ("a017" in /gen/a_017.py, then "b017" in /gen/b_017.py): every event must carry its own
/// image's name and file, exactly as often as that image ran it. Functions are called from C, so each call enters
/// _PyEval_EvalFrameDefault whether or not the eval-frame hook is set in the new image (3.11+).
/// </summary>
public class EvalFrameExecTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "eval_frame_exec.py");
    private const int Functions = 50;
    private static readonly string[] Phases = ["a", "b"];

    /// <summary>setarch from util-linux (essential on Debian): runs a command with ADDR_NO_RANDOMIZE, which exec keeps.</summary>
    private const string Setarch = "/usr/bin/setarch";

    public static TheoryData<string> Interpreters => new() { "pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0", "debian:3.13", "debian:3.14" };

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void EveryEventAfterAnExecNamesTheNewImagesFunctions(string interpreter)
    {
        using var target = WaitingWorkload.Start([Setarch, "-R", .. InterpreterCommand(interpreter), Workload, "w"]);
        using var json = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "--duration", "60"], out _);
        target.Go();
        var before = Ids(target.ReadLine(), "a");
        var after = Ids(target.ReadLine(), "b");
        Assert.True(before.Zip(after).Any(p => p.First == p.Second), "no code object of the new image is at an address the old image used: the test proves nothing");
        AttachedTracer.Interrupt(trace);
        AssertEveryImageExact(new TraceOutput(File.ReadAllText(json.Path)));
    }

    /// <summary>The interpreter's command line, as <see cref="EvalFrameTraceTests.StartScript"/> builds it (which cannot put setarch first).</summary>
    private static List<string> InterpreterCommand(string interpreter)
    {
        var (kind, version) = (interpreter.Split(':')[0], interpreter.Split(':')[1]);
        if (kind != "pyenv") return CachedPythons.Get(version).Command();
        var minor = string.Join('.', version.Split('.').Take(2));
        var binary = $"/root/.pyenv/versions/{version}/bin/python{minor}";
        if (!File.Exists(binary)) Assert.Fail($"{binary} is missing: install CPython {version} with pyenv");
        return [binary];
    }

    /// <summary>An image's "ids PHASE ..." line: the id of each of its functions' code objects.</summary>
    private static string[] Ids(string? line, string phase)
    {
        Assert.NotNull(line);
        Assert.StartsWith($"ids {phase} ", line);
        var ids = line[$"ids {phase} ".Length..].Split(' ');
        Assert.Equal(Functions, ids.Length);
        return ids;
    }

    /// <summary>
    /// In each image, function i (&lt;phase&gt;&lt;i:000&gt;) called i % 3 + 1 times and its &lt;module&gt; once, both in
    /// /gen/&lt;phase&gt;_&lt;i:000&gt;.py, entries and returns alike; no event pairs one image's name with the other's file,
    /// and no other event names a generated file. Every difference is listed, so a failure shows how names went astray.
    /// </summary>
    private static void AssertEveryImageExact(TraceOutput output)
    {
        var counts = output.Events
            .Select(e => (Probe: e.GetProperty("probe").GetString()!, Name: e.GetProperty("funcname").GetString()!, File: e.GetProperty("filename").GetString()!))
            .Where(e => e.File.StartsWith("/gen/", StringComparison.Ordinal))
            .GroupBy(e => e).ToDictionary(g => g.Key, g => g.Count());
        var expected = new Dictionary<(string Probe, string Name, string File), int>();
        foreach (var probe in new[] { "function__entry", "function__return" })
            foreach (var phase in Phases)
                for (var i = 0; i < Functions; i++)
                {
                    expected[(probe, $"{phase}{i:000}", $"/gen/{phase}_{i:000}.py")] = i % 3 + 1;
                    expected[(probe, "<module>", $"/gen/{phase}_{i:000}.py")] = 1;
                }
        var differences = expected.Keys.Union(counts.Keys)
            .Where(k => counts.GetValueOrDefault(k) != expected.GetValueOrDefault(k))
            .Order()
            .Select(k => $"{k.Probe} {k.Name} in {k.File}: {counts.GetValueOrDefault(k)}, expected {expected.GetValueOrDefault(k)}")
            .ToList();
        Assert.True(differences.Count == 0, $"{differences.Count} differences:\n" + string.Join("\n", differences));
    }
}
