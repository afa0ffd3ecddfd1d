using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

public partial class RecordTests
{
    /// <summary>
    /// record --gil: of a thread spinning in Python and one hashing with the GIL released, both on a CPU, only the spinning
    /// thread's samples are kept (the kernel tells at each sample whether the thread holds the GIL: the runtime's holder up
    /// to 3.11, the interpreter's GIL from 3.12), and the hasher's are counted as left out — on every interpreter.
    /// </summary>
    [Theory]
    [MemberData(nameof(Interpreters))]
    public void GilKeepsOnlyTheSamplesOfTheThreadHoldingIt(string interpreter)
    {
        var output = Temp("folded");
        var start = new System.Diagnostics.ProcessStartInfo(Python(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(Workloads, "gil_split.py"));
        using var workload = System.Diagnostics.Process.Start(start)!;
        try
        {
            var ready = FirstLine(workload, TimeSpan.FromSeconds(30))?.Split(' ');
            Assert.True(ready is ["ready", _, _], $"the workload said '{string.Join(' ', ready ?? [])}'");
            var (main, hasher) = (ready![1], ready[2]);
            Thread.Sleep(200);
            var result = PyprobeBinary.Run(["record", "--gil", "--threads", "-r", "199", "-f", "collapsed", "-o", output, "-p", workload.Id.ToString(), "--duration", "3"],
                timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            var line = Regex.Match(result.Stderr, @"GIL: (\d+) of (\d+) samples with a Python stack \([\d.]+%\) held it; the (\d+) that did not are left out \(--gil\)");
            Assert.True(line.Success, result.ToString());
            var (held, all, left) = (long.Parse(line.Groups[1].Value), long.Parse(line.Groups[2].Value), long.Parse(line.Groups[3].Value));
            Assert.Equal(all, held + left);

            var stacks = ReadCollapsed(output);
            Assert.Equal(held, stacks.Sum(s => s.Count));
            long OnThread(string tid) => stacks.Where(s => s.Frames[0].StartsWith($"thread {tid} (", StringComparison.Ordinal)).Sum(s => s.Count);
            // The spinning thread holds the GIL whenever it runs Python; the hasher takes it only between two hashes.
            Assert.True(OnThread(main) >= 150, $"{OnThread(main)} samples of the spinning thread kept: {result}");
            Assert.True(OnThread(hasher) <= Math.Max(3, held / 50), $"{OnThread(hasher)} of {held} kept samples are the hasher's: {result}");
            Assert.All(stacks.Where(s => s.Frames[0].StartsWith($"thread {main} (", StringComparison.Ordinal)), s => Assert.StartsWith("spin (", s.Frames[^1]));
            // The hasher was on a CPU without the GIL: its samples are the ones left out.
            Assert.True(left >= 100, $"only {left} samples left out: {result}");
        }
        finally
        {
            workload.Kill();
            File.Delete(output);
        }
    }

    [Fact]
    public void GilAndIdleAreRefusedTogether()
    {
        var result = PyprobeBinary.Run(["record", "--gil", "--idle", "-p", "1", "--duration", "1"], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("pyprobe: --gil and --idle do not go together: --gil keeps the samples of threads on a CPU holding the GIL (see 'pyprobe record --help')\n", result.Stderr);
    }
}
