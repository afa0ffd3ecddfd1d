namespace Pyprobe.Cli.Tests;

/// <summary>
/// Workloads/eval_frame_reuse.py and what it must yield: round i compiles, in /generated/round_i.py, a module defining a
/// function of its own name (r&lt;i&gt;_ and i % 7 x's), runs the module once and calls the function i % 3 + 1 times, then
/// frees both, so later rounds' code objects and strs take the earlier ones' addresses.
/// </summary>
public static class ReuseWorkload
{
    public static readonly string Script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "eval_frame_reuse.py");

    public const int Rounds = 300;

    /// <summary>Starts the workload on <paramref name="interpreter"/>, with names that are not ASCII when <paramref name="wide"/>.</summary>
    public static WaitingWorkload Start(string interpreter, bool wide) => EvalFrameTraceTests.StartScript(Script, wide ? ["wide"] : [], interpreter);

    /// <summary>Round <paramref name="i"/>'s function name and file, as the workload makes them.</summary>
    public static (string Name, string File) Names(int i, bool wide) => wide
        ? ($"r{i}_{string.Concat(Enumerable.Repeat(new[] { "é", "函", "\U00020000" }[i % 3], i % 7 + 1))}", $"/generated/{new[] { "röund", "回合", "🐍" }[i % 3]}_{i}.py")
        : ($"r{i}_{new string('x', i % 7)}", $"/generated/round_{i}.py");

    /// <summary>The workload's "ids ..." line: the id of each round's code object; some address must come back.</summary>
    public static void AssertAddressesWereReused(string? line)
    {
        Assert.NotNull(line);
        Assert.StartsWith("ids ", line);
        var ids = line["ids ".Length..].Split(' ');
        Assert.Equal(Rounds, ids.Length);
        Assert.True(ids.Distinct().Count() < Rounds, "no code object address was reused: the workload proves nothing");
    }

    /// <summary>
    /// Every round's function counted i % 3 + 1 times and its &lt;module&gt; once, and nothing else under a generated file:
    /// <paramref name="counts"/> by (file, function) holds only what names a /generated/ file.
    /// </summary>
    /// <param name="what">Names the counts in a failure (a probe, an output).</param>
    public static void AssertEveryRoundExact(IReadOnlyDictionary<(string File, string Name), long> counts, string what, bool wide = false)
    {
        var expected = 0L;
        for (var i = 0; i < Rounds; i++)
        {
            var (name, file) = Names(i, wide);
            Assert.True(counts.GetValueOrDefault((file, name)) == i % 3 + 1, $"{what}: {name} in {file}: {counts.GetValueOrDefault((file, name))}, expected {i % 3 + 1}");
            Assert.True(counts.GetValueOrDefault((file, "<module>")) == 1, $"{what}: <module> in {file}: {counts.GetValueOrDefault((file, "<module>"))}, expected 1");
            expected += i % 3 + 2;
        }
        Assert.True(counts.Count == 2 * Rounds, $"{what}: {counts.Count} functions in generated files, expected {2 * Rounds}");
        Assert.Equal(expected, counts.Values.Sum());
    }

    /// <summary>Keeps the counts of functions in generated files.</summary>
    public static Dictionary<(string File, string Name), long> Generated(IEnumerable<KeyValuePair<(string File, string Name), long>> counts) =>
        counts.Where(c => c.Key.File.StartsWith("/generated/", StringComparison.Ordinal)).ToDictionary(c => c.Key, c => c.Value);
}
