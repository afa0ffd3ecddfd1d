using System.Diagnostics;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Cli.Tests;

/// <summary>record --all follows the machine as it changes: a Python started after the recording began is sampled, one that exits is dropped.</summary>
public partial class RecordTests
{
    /// <summary>
    /// A copy of cpu_split.py in a folder of its own, so its frames tell this test's process from any other Python
    /// that runs on the machine meanwhile (--all samples them all).
    /// </summary>
    private static string PrivateCopyOfCpuSplit(out string folder)
    {
        folder = Directory.CreateTempSubdirectory("pyprobe-record-all-").FullName;
        var script = Path.Combine(folder, "cpu_split.py");
        File.Copy(Path.Combine(Workloads, "cpu_split.py"), script);
        return script;
    }

    [Theory]
    [InlineData("pyenv:3.11.7")]
    [InlineData("debian:3.14")]
    public void AllPicksUpAPythonStartedAfterTheRecordingBegan(string interpreter)
    {
        var script = PrivateCopyOfCpuSplit(out var folder);
        var output = Temp("folded");
        try
        {
            using var pyprobe = AttachedTracer.Start(["record", "--all", "--duration", "7", "-r", "199", "-f", "collapsed", "-o", output], out var attached);
            Assert.Contains("every Python process (", attached);
            Thread.Sleep(1000);
            // 2 s of CPU time in heavy() and light(), 3:1; then it exits while the recording goes on.
            using var late = Process.Start(new ProcessStartInfo(Python(interpreter)) { ArgumentList = { script, "2" }, UseShellExecute = false })!;
            Assert.True(late.WaitForExit(TimeSpan.FromSeconds(30)), "the late Python did not finish its 2 s of CPU");
            Assert.Equal(0, late.ExitCode);
            var (exit, _, stderr) = AttachedTracer.Finish(pyprobe, TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, stderr);

            var ours = ReadCollapsed(output).Where(s => s.Frames.Any(f => f.Contains($"({script}:", StringComparison.Ordinal))).ToList();
            long Samples(string function) => ours.Where(s => s.Frames[^1].StartsWith("spin (", StringComparison.Ordinal) && s.Frames.Any(f => f.StartsWith(function + " (", StringComparison.Ordinal))).Sum(s => s.Count);
            var (heavy, light) = (Samples("heavy"), Samples("light"));
            // 2 s of CPU at 199 Hz is about 398 samples; the interpreter's start-up before the script's first line takes
            // a few of them, a process found a poll (≤ 0.5 s of wall time) after it started misses some.
            Assert.True(heavy + light >= 200, $"only {heavy + light} samples of the late Python in spin(): {stderr}");
            Assert.InRange((double)heavy / (heavy + light), 0.68, 0.82);
        }
        finally
        {
            File.Delete(output);
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The scope --all polls: a new Python is added (attached, with its runtime read), and once it exits it is removed.</summary>
    [Fact]
    public void AllAddsNewPythonsAndDropsExitedOnes()
    {
        var python = Python("pyenv:3.12.1");
        var processes = new SampledProcesses(new SampleScope.Machine(python));
        foreach (var process in processes.Poll().Added) process.Dispose();
        var target = RunningProcess.Python(python);
        var pid = target.Pid;
        try
        {
            var (added, removed) = processes.Poll();
            foreach (var process in added) process.Dispose();
            Assert.Contains(added, p => p.Pid == pid);
            Assert.DoesNotContain(pid, removed);
            Assert.Contains(pid, processes.Sampled.Keys);
        }
        finally
        {
            target.Dispose(); // killed and waited for
        }
        var after = processes.Poll();
        Assert.Contains(pid, after.Removed);
        Assert.DoesNotContain(pid, processes.Sampled.Keys);
        Assert.DoesNotContain(after.Added, p => p.Pid == pid);
        foreach (var process in after.Added) process.Dispose();
    }
}
