namespace Pyprobe.Cli.Tests;

public partial class RecordTests
{
    /// <summary>
    /// record --function: a function whose samples fall on three lines is one frame at its def line, and its caller one
    /// frame at its own first line, on a Python with probes and one without.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.9")]
    public void ByFunctionEachFunctionIsOneFrameAtItsDefLine(string interpreter)
    {
        var script = Temp("py");
        var output = Temp("folded");
        try
        {
            // work() spends 1 s of CPU on lines 5-7; without --function its samples split over them.
            File.WriteAllText(script, "import time\ndef work():\n    end = time.process_time() + 1.0\n    a = 0\n    while time.process_time() < end:\n        a += 1\n        a -= 1\nwork()\n");
            var result = PyprobeBinary.Run(["record", "--function", "-f", "collapsed", "-o", output, "--", Python(interpreter), script], timeout: TimeSpan.FromSeconds(120));
            Assert.True(result.ExitCode == 0, result.ToString());
            var stacks = ReadCollapsed(output).Where(s => s.Frames[0].StartsWith($"<module> ({script}:", StringComparison.Ordinal)).ToList();
            Assert.True(stacks.Sum(s => s.Count) >= 50, $"only {stacks.Sum(s => s.Count)} samples of the script: {result}");
            // A sample can land on the module's own code around the call (its start, the call, the exit): <module> alone.
            var only = Assert.Single(stacks, s => s.Frames.Length > 1);
            Assert.Equal([$"<module> ({script}:1)", $"work ({script}:2)"], only.Frames);
            Assert.All(stacks.Where(s => s.Frames.Length == 1), s => Assert.Equal($"<module> ({script}:1)", s.Frames[0]));
            Assert.True(stacks.Where(s => s.Frames.Length == 1).Sum(s => s.Count) <= 3, $"{stacks.Sum(s => s.Count)} samples, of which <module> alone {stacks.Where(s => s.Frames.Length == 1).Sum(s => s.Count)}");
        }
        finally
        {
            File.Delete(script);
            File.Delete(output);
        }
    }
}
