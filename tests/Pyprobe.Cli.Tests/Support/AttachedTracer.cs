using System.Diagnostics;

namespace Pyprobe.Cli.Tests;

/// <summary>A pyprobe process started in the background and driven by signals, as a user at a terminal would.</summary>
public static class AttachedTracer
{
    /// <summary>Starts pyprobe and returns once it has printed its "Attached" line.</summary>
    public static Process Start(string[] args, out string attachedLine) => Start(args, out attachedLine, out _);

    /// <summary>The same, with the lines printed before the "Attached" line (notes).</summary>
    public static Process Start(string[] args, out string attachedLine, out string before) => Start(args, out attachedLine, out before, asFromATerminal: false);

    /// <summary>
    /// Starts pyprobe with SIGINT at its default, as a shell at a terminal starts it, whatever this test run inherited:
    /// a runner started in the background by a shell without job control passes SIGINT on ignored, and pyprobe then
    /// (rightly) starts its command with SIGINT ignored too, which a Ctrl-C test must not get.
    /// </summary>
    public static Process StartAsFromATerminal(string[] args, out string attachedLine) => Start(args, out attachedLine, out _, asFromATerminal: true);

    private static Process Start(string[] args, out string attachedLine, out string before, bool asFromATerminal)
    {
        if (!File.Exists(PyprobeBinary.Path)) Assert.Fail($"{PyprobeBinary.Path} is missing: run scripts/build.sh");
        attachedLine = "";
        before = "";
        var info = new ProcessStartInfo(asFromATerminal ? "/usr/bin/env" : PyprobeBinary.Path) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (asFromATerminal)
        {
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add(PyprobeBinary.Path);
        }
        foreach (var a in args) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var stderr = new System.Text.StringBuilder();
        while (process.StandardError.ReadLine() is { } line)
        {
            stderr.AppendLine(line);
            if (line.StartsWith("Attached", StringComparison.Ordinal))
            {
                attachedLine = line;
                before = stderr.ToString();
                return process;
            }
        }
        Assert.Fail($"pyprobe {string.Join(' ', args)} did not attach: {stderr}");
        return process;
    }

    /// <summary>Waits for pyprobe to end (killing it and failing after <paramref name="timeout"/>) and collects what it printed.</summary>
    public static (int Exit, string Stdout, string Stderr) Finish(Process process, TimeSpan timeout)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill();
            Assert.Fail("pyprobe did not stop in time");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Ctrl-C to the tracer: it must end with exit code 0 and nothing lost. Returns its standard error.</summary>
    public static string Interrupt(Process trace)
    {
        Signal(trace.Id, "INT");
        var (exit, _, stderr) = Finish(trace, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Contains(", 0 lost", stderr);
        return stderr;
    }

    /// <summary>kill -SIGNAL PID.</summary>
    public static void Signal(int pid, string signal) => Process.Start("kill", [$"-{signal}", pid.ToString()])!.WaitForExit();
}
