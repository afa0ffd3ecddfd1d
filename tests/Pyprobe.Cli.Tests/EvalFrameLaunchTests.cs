using System.Diagnostics;
using System.Text.RegularExpressions;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `-- CMD` for commands that are not a Python binary with working function probes: pyprobe follows the command and
/// its descendants (a shell that execs Python, Debian's launcher script that runs Python through its own loader),
/// stops the one that starts CPython before it runs Python code, attaches (and sets the eval-frame hook on 3.11+),
/// and lets it go: not one call is missed.
/// </summary>
public partial class EvalFrameLaunchTests
{
    private const string Fib = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(18))\n";

    public static TheoryData<string> Interpreters => new() { "pyenv:3.9.18", "pyenv:3.12.1", "debian:3.9", "debian:3.13", "debian:3.14" };

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void ACommandThatStartsPythonThroughAShellGivesExactCounts(string interpreter)
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, Fib);
        using var json = new TempFile();
        var result = PyprobeBinary.Run(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "--",
            "sh", "-c", "exec \"$0\" \"$1\"", Python(interpreter), script.Path], timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("2584", result.Stdout.Trim());
        Assert.Contains(", 0 lost", result.Stderr);
        // The Attached line names each function probe's source and its cost, once for probes that share it.
        Assert.Contains(interpreter == "debian:3.9" ? "Attached function__entry, function__return (USDT, about" : "Attached function__entry, function__return (uprobe on _PyEval_EvalFrameDefault", result.Stderr);
        Assert.Single(Regex.Matches(result.Stderr, interpreter == "debian:3.9" ? @"\(USDT, about" : @"\(uprobe on _PyEval_EvalFrameDefault"));
        Assert.Contains("µs per", result.Stderr.Split('\n').Single(l => l.StartsWith("Attached", StringComparison.Ordinal)));
        var output = new TraceOutput(File.ReadAllText(json.Path));
        Assert.Equal(8361, output.Count("function__entry", "funcname", "fib"));
        Assert.Equal(8361, output.Count("function__return", "funcname", "fib"));
        // The interpreter's very first activation (importlib's bootstrap module) is seen too: it stopped before it.
        Assert.Equal("<module>", output.OfProbe("function__entry").First().GetProperty("funcname").GetString());
    }

    [Fact]
    public void CtrlCRestoresTheHookOfAFollowedCommandThatRunsOn()
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, "import time\ndef tick():\n    time.sleep(0.01)\nwhile True:\n    tick()\n");
        using var trace = AttachedTracer.Start(["trace", "function__entry", "-o", "/dev/null", "--", "sh", "-c", "exec \"$0\" \"$1\"", Python("pyenv:3.12.1"), script.Path], out var attached);
        var pid = int.Parse(PidOf().Match(attached).Groups[1].Value);
        try
        {
            Assert.Equal([HookState.EvalFrameDefault], HookStates(pid));
            AttachedTracer.Signal(trace.Id, "INT");
            // pyprobe detaches, then waits for the command (a terminal's Ctrl-C would have reached it too).
            var detached = trace.StandardError.ReadLine();
            Assert.StartsWith("Detached after", detached);
            Assert.Equal([HookState.Unset], HookStates(pid));
        }
        finally
        {
            AttachedTracer.Signal(pid, "TERM");
        }
        var (exit, _, stderr) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(30));
        Assert.True(exit == 128 + 15 || exit == -15 || exit == 143, $"exit {exit}: {stderr}");
    }

    [Fact]
    public void ACommandThatNeverStartsPythonIsAnError()
    {
        var result = PyprobeBinary.Run(["trace", "--", "sh", "-c", "exit 3"]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("ended without starting CPython (exit code 3)", result.Stderr);
    }

    [Fact]
    public void AJitEnabledProcessIsNamedAndCountsStayExact()
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n" + Fib);
        var python = CachedPythons.Get("3.14");
        var info = new ProcessStartInfo(python.LauncherPath) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(script.Path);
        info.Environment["PYTHON_JIT"] = "1";
        using var target = Process.Start(info)!;
        try
        {
            Assert.Equal("ready", target.StandardOutput.ReadLine());
            // The note comes before the Attached line: a short run shows all of stderr.
            var note = PyprobeBinary.Run(["trace", "function__entry", "-p", target.Id.ToString(), "-o", "/dev/null", "--duration", "0.3"]);
            Assert.True(note.ExitCode == 0, note.ToString());
            Assert.Contains($"process {target.Id} runs with PYTHON_JIT on", note.Stderr);
            using var json = new TempFile();
            using var trace = AttachedTracer.Start(["trace", "function__entry", "--format", "json", "-o", json.Path, "-p", target.Id.ToString()], out _);
            target.StandardInput.WriteLine();
            target.StandardInput.Flush();
            Assert.Equal("2584", target.StandardOutput.ReadLine());
            target.WaitForExit(30000);
            var (exit, _, stderr) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, stderr);
            Assert.Equal(8361, new TraceOutput(File.ReadAllText(json.Path)).Count("function__entry", "funcname", "fib"));
        }
        finally
        {
            if (!target.HasExited) target.Kill();
        }
    }

    private static string Python(string interpreter) => CachedPythons.Executable(interpreter);

    private static List<HookState> HookStates(int pid)
    {
        using var process = CPythonProcess.Attach(pid);
        return EvalFrameHook.Inspect(process).ToList();
    }

    [GeneratedRegex(@"\(pid (\d+)\)")]
    private static partial Regex PidOf();
}
