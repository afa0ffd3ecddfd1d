namespace Pyprobe.Cli.Tests;

public partial class RecordTests
{
    private const int ImportedModules = 8;

    /// <summary>
    /// A module's body is freed as soon as it has run: before user space could read it, its frames were
    /// "&lt;unknown (code object freed)&gt;" (40% of the samples of an import-heavy start). The kernel now copies a code
    /// object the first time it meets it; every frame of the imports is named, with its line, under the line that
    /// imported it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Interpreters))]
    public void ModuleBodiesThatRanOnceAreNamedWithTheirLines(string interpreter)
    {
        var folder = Directory.CreateTempSubdirectory("pyprobe-imports-");
        var output = Temp("folded");
        try
        {
            // Each module spends 40 ms of CPU in its body (lines 3-4), then is done and its body freed.
            for (var i = 0; i < ImportedModules; i++)
                File.WriteAllText(Path.Combine(folder.FullName, $"busy_module_{i}.py"),
                    "import time\nend = time.process_time() + 0.04\nwhile time.process_time() < end:\n    pass\n");
            // 300 ms of CPU first (a started command's Python is found some ms after its exec: through the Debian
            // builds' launcher script the first module's body once ran before it was), then busy_module_i at line i + 5.
            var main = Path.Combine(folder.FullName, "main.py");
            File.WriteAllText(main, "import sys, time\nsys.path.insert(0, sys.argv[1])\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n" +
                string.Concat(Enumerable.Range(0, ImportedModules).Select(i => $"import busy_module_{i}\n")));

            var result = PyprobeBinary.Run(["record", "-r", "999", "-f", "collapsed", "-o", output, "--", Python(interpreter), main, folder.FullName], timeout: TimeSpan.FromSeconds(120));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.DoesNotContain("shown as unknown", result.Stderr);
            var stacks = ReadCollapsed(output);
            Assert.DoesNotContain(stacks, s => s.Frames.Any(f => f.StartsWith("<unknown", StringComparison.Ordinal)));
            for (var i = 0; i < ImportedModules; i++)
            {
                var body = Path.Combine(folder.FullName, $"busy_module_{i}.py");
                var inBody = stacks.Where(s => s.Frames[^1] is var inner && (inner == $"<module> ({body}:3)" || inner == $"<module> ({body}:4)")).ToList();
                var samples = inBody.Sum(s => s.Count);
                Assert.True(samples >= 5, $"busy_module_{i}: {samples} samples in its body\n{string.Join('\n', stacks.Select(s => string.Join(';', s.Frames)))}");
                Assert.All(inBody, s => Assert.Equal($"<module> ({main}:{i + 5})", s.Frames[0]));
            }
        }
        finally
        {
            File.Delete(output);
            folder.Delete(recursive: true);
        }
    }
}
