using System.Diagnostics;
using System.Globalization;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// A process a shell without job control starts in the background (a script's `pyprobe trace ... &amp;`, CI runners)
/// begins with SIGINT ignored, and the .NET runtime keeps it so: pyprobe runs itself again with SIGINT at its default
/// (InterruptibleStart), so Ctrl-C / kill -INT still detaches it, while a command it starts gets SIGINT ignored as it
/// would have without pyprobe, and none of pyprobe's own environment.
/// </summary>
public class IgnoredInterruptTests
{
    private static Process StartWithInterruptIgnored(params string[] pyprobeArgs)
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("trap '' INT; exec \"$@\"");
        info.ArgumentList.Add("sh");
        info.ArgumentList.Add(PyprobeBinary.Path);
        foreach (var a in pyprobeArgs) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    [Fact]
    public void KillIntDetachesAPyprobeStartedWithSigintIgnored()
    {
        using var target = EvalFrameTraceTests.StartScript(Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "eval_frame_reuse.py"), "debian:3.9");
        using var pyprobe = StartWithInterruptIgnored("trace", "-p", target.Pid.ToString(CultureInfo.InvariantCulture), "-o", "/dev/null");
        string? line;
        while ((line = pyprobe.StandardError.ReadLine()) is not null && !line.StartsWith("Attached", StringComparison.Ordinal)) { }
        Assert.NotNull(line);
        // Started ignored, it runs with SIGINT handled: the same pid, after its second start.
        Assert.Equal(0UL, IgnoredSignals(pyprobe.Id) & (1UL << 1));
        AttachedTracer.Signal(pyprobe.Id, "INT");
        var (exit, _, stderr) = AttachedTracer.Finish(pyprobe, TimeSpan.FromSeconds(30));
        Assert.True(exit == 0, stderr);
        Assert.Contains("events delivered, 0 lost", stderr);
    }

    [Fact]
    public void ACommandStartedByItKeepsSigintIgnoredAndTheUsersEnvironment()
    {
        var python = CachedPythons.Get("3.9");
        // The events to a file: the command's output alone on stdout (it may write its line in pieces).
        using var pyprobe = StartWithInterruptIgnored(["trace", "-o", "/dev/null", "--", .. python.Command(["-c", "import os, signal; print(signal.getsignal(signal.SIGINT), os.environ.get('PYPROBE_SIGINT_WAS_IGNORED'))"])]);
        var (exit, stdout, stderr) = AttachedTracer.Finish(pyprobe, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        Assert.Equal("Handlers.SIG_IGN None\n", stdout);
    }

    private static ulong IgnoredSignals(int pid) =>
        Convert.ToUInt64(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))["SigIgn:".Length..].Trim(), 16);
}
