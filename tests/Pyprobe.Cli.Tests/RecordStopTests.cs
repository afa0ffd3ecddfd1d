using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// How a recording of a started command ends: --duration stops it on time and ends the command the way timeout(1)
/// would; without --duration, SIGTERM or Ctrl-C stop it and the profile is still written.
/// </summary>
public partial class RecordTests
{
    [GeneratedRegex(@"\(pid (\d+)\) and the Python processes it starts")]
    private static partial Regex CommandPid();

    private static int CommandPidOf(string attachedLine)
    {
        var match = CommandPid().Match(attachedLine);
        Assert.True(match.Success, attachedLine);
        return int.Parse(match.Groups[1].Value);
    }

    /// <summary>A command that would burn CPU for 60 s, recorded for 2: pyprobe is back within seconds, the profile has heavy() and light(), the command is gone.</summary>
    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void DurationEndsTheRecordingAndTheCommandItStarted(string interpreter)
    {
        var output = Temp("folded");
        try
        {
            var clock = Stopwatch.StartNew();
            var result = PyprobeBinary.Run(["record", "--duration", "2", "-r", "999", "-f", "collapsed", "-o", output, "--", Python(interpreter), Path.Combine(Workloads, "cpu_split.py"), "60"], timeout: TimeSpan.FromSeconds(40));
            var took = clock.Elapsed;
            Assert.True(result.ExitCode == 0, result.ToString());
            var pid = CommandPidOf(result.Stderr);
            Assert.Matches(@"Detached after 2\.\d\d s", result.Stderr);
            Assert.Contains($"pyprobe: --duration reached: ended the command (pid {pid}) with SIGTERM", result.Stderr);
            // Start-up (the interpreter's, the sampler's) and the SIGTERM: far less than the 60 s the command would run.
            Assert.True(took < TimeSpan.FromSeconds(15), $"pyprobe took {took.TotalSeconds:0.0} s: {result}");
            Assert.False(Directory.Exists($"/proc/{pid}"), $"the command (pid {pid}) is still there");
            var stacks = ReadCollapsed(output);
            long Samples(string function) => stacks.Where(s => s.Frames.Any(f => f.StartsWith(function + " (", StringComparison.Ordinal))).Sum(s => s.Count);
            // At 999 Hz, even on a machine busy enough to give the command a tenth of a CPU.
            Assert.True(Samples("heavy") + Samples("light") >= 40, result.ToString());
            Assert.True(Samples("heavy") > Samples("light"), result.ToString());
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>
    /// No --duration: SIGTERM to pyprobe (as a service manager sends it) stops the recording, writes the profile and
    /// passes the SIGTERM on to the command; Ctrl-C at a terminal reaches both pyprobe and the command (one process
    /// group), and the profile is written too.
    /// </summary>
    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public void ASignalStopsARecordingOfACommandAndTheProfileIsWritten(string signal)
    {
        var output = Temp("folded");
        try
        {
            using var pyprobe = AttachedTracer.StartAsFromATerminal(["record", "-f", "collapsed", "-o", output, "--", Python("pyenv:3.11.7"), Path.Combine(Workloads, "cpu_split.py"), "60"], out var attached);
            var pid = CommandPidOf(attached);
            Thread.Sleep(2500);
            AttachedTracer.Signal(pyprobe.Id, signal);
            if (signal == "INT") AttachedTracer.Signal(pid, signal); // the terminal's Ctrl-C goes to the whole foreground group
            var (exit, _, stderr) = AttachedTracer.Finish(pyprobe, TimeSpan.FromSeconds(30));
            // The command's own exit status: ended by the signal (128 + its number).
            Assert.True(exit == (signal == "TERM" ? 128 + 15 : 128 + 2), $"exit {exit}: {stderr}");
            Assert.Matches(@"Detached after \d+\.\d\d s: \d+ samples of 1 process", stderr);
            Assert.Contains($"Wrote the collapsed stacks to {output}", stderr);
            Assert.DoesNotContain("--duration reached", stderr);
            Assert.False(Directory.Exists($"/proc/{pid}"), $"the command (pid {pid}) is still there");
            Assert.Contains(ReadCollapsed(output), s => s.Frames.Any(f => f.StartsWith("heavy (", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void HelpSaysHowDurationEndsACommand()
    {
        var result = PyprobeBinary.Run("record", "--help");
        Assert.True(result.ExitCode == 0, result.ToString());
        var help = string.Join(' ', result.Stdout.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("ended as timeout(1) does (SIGTERM to it and what it started, SIGKILL after 5 s; said on stderr with its pid)", help);
    }
}
