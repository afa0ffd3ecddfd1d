using System.Text.Json;
using System.Text.RegularExpressions;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `-- CMD` traces every CPython process the command starts, not only the first: two Pythons a shell runs one after the
/// other, and Python children a Python starts with subprocess. Each is stopped at its interpreter's start, attached (USDT
/// where its probes fire, _PyEval_EvalFrameDefault with the hook where they do not) and let go, so each gives the exact
/// counts; each one's hook is put back when pyprobe detaches.
/// </summary>
public partial class FollowedCommandTests
{
    private const string Fib = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(18))\n";

    /// <summary>Runs the script named by its first argument 3 times, each in a Python child of its own, after calling fib(18) itself.</summary>
    private const string Parent = "import subprocess, sys\n" + Fib + "for _ in range(3):\n    subprocess.run([sys.executable, sys.argv[1]], check=True)\n";

    private const string Pyenv39 = "/root/.pyenv/versions/3.9.18/bin/python3.9", Pyenv312 = "/root/.pyenv/versions/3.12.1/bin/python3.12";

    [Fact]
    public void TwoDifferentPythonsAShellRunsInSequenceAreBothTraced()
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, Fib);
        using var json = new TempFile();
        // pyenv 3.9 (no probes: a plain uprobe on _PyEval_EvalFrameDefault) then Debian 3.14 through its launcher (the hook).
        var result = PyprobeBinary.Run(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "--",
            "sh", "-c", "\"$0\" \"$2\" && \"$1\" \"$2\"", Existing(Pyenv39), CachedPythons.Get("3.14").LauncherPath, script.Path], timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["2584", "2584"], result.StdoutLines);
        Assert.Contains(", 0 lost", result.Stderr);
        var perPid = FibEventsPerPid(json.Path);
        Assert.Equal(2, perPid.Count);
        Assert.All(perPid.Values, counts => Assert.Equal((8361, 8361), counts));
        // The second one was attached while the run went on, and said so with its pid and its source.
        var followed = Assert.Single(Followed().Matches(result.Stderr));
        Assert.Contains(int.Parse(followed.Groups[1].Value), perPid.Keys);
        Assert.Contains("with the eval-frame hook", followed.Value);
    }

    /// <summary>A Python that forks without exec: the child, a copy of a running interpreter, is stopped where os.fork returns in it and traced under its own pid.</summary>
    [Theory]
    [InlineData(Pyenv312)]
    [InlineData("3.9")]
    public void AChildForkedWithoutExecIsTracedWithItsPid(string python)
    {
        const string Forking = Fib + "import os\npid = os.fork()\nif pid == 0:\n    print(fib(18), flush=True)\n    os._exit(0)\nos.waitpid(pid, 0)\n";
        using var script = new TempFile();
        File.WriteAllText(script.Path, Forking.Replace("print(fib(18))\n", "print(fib(18), flush=True)\n"));
        using var json = new TempFile();
        var interpreter = Interpreter(python);
        var result = PyprobeBinary.Run(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "--", interpreter, script.Path],
            timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["2584", "2584"], result.StdoutLines);
        Assert.Contains(", 0 lost", result.Stderr);
        var perPid = FibEventsPerPid(json.Path);
        Assert.Equal(2, perPid.Count);
        Assert.All(perPid.Values, counts => Assert.Equal((8361, 8361), counts));
        var followed = Assert.Single(Followed().Matches(result.Stderr));
        Assert.Contains(int.Parse(followed.Groups[1].Value), perPid.Keys);
    }

    /// <summary>
    /// A child given the pid of a child that exited (Workloads/pid_reuse.py, through ns_last_pid), whose function's code
    /// object and names sit where the first one's did: its events carry its own names. The name-pair memo (Debian 3.9,
    /// USDT) keys its entries by tgid and the names' addresses; where every link runs only in the process it was made for, no program runs at
    /// exits, and the second child's entries are told apart by the epoch pyprobe gives a process when it attaches it.
    /// The eval-frame programs' memo (pyenv 3.12) keys its entries by tgid and code object the same way.
    /// </summary>
    [Theory]
    [InlineData("3.9")]
    [InlineData(Pyenv312)]
    public void AChildGivenAnExitedChildsPidIsNamedByItsOwnCode(string python)
    {
        var script = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "pid_reuse.py");
        using var json = new TempFile();
        var interpreter = Interpreter(python);
        CliResult result;
        // Another process may take the pid between the workload's write and its fork (tests fork beside it): then it says
        // "retry". And the second child's heap may not hand out the first one's addresses (a CI run saw the filename str
        // elsewhere): such a run proves nothing either. Only a run where the pid and every address came back is checked.
        var attempts = 0;
        List<string[]> children;
        do
        {
            result = PyprobeBinary.Run(["trace", "function__entry", "--format", "json", "-o", json.Path, "--", interpreter, script], timeout: TimeSpan.FromSeconds(120));
            Assert.True(result.ExitCode == 0, result.ToString());
            children = result.StdoutLines.Where(line => line.StartsWith("child ", StringComparison.Ordinal)).Select(line => line.Split(' ')).ToList();
        }
        while ((result.StdoutLines[^1] == "retry" || children.Count == 2 && !children[0].AsSpan(1).SequenceEqual(children[1].AsSpan(1))) && ++attempts < 5);
        Assert.Equal("done", result.StdoutLines[^1]);
        Assert.Equal(2, children.Count);
        // The same pid, and the same addresses for the code object and both names: otherwise the run proves nothing.
        Assert.Equal(children[0][1..], children[1][1..]);
        Assert.Contains(", 0 lost", result.Stderr);

        var generated = new TraceOutput(File.ReadAllText(json.Path)).Events
            .Where(e => e.GetProperty("filename").GetString()!.StartsWith("/generated/", StringComparison.Ordinal))
            .GroupBy(e => (e.GetProperty("filename").GetString(), e.GetProperty("funcname").GetString()))
            .ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(new Dictionary<(string?, string?), int>
        {
            [("/generated/alpha.py", "<module>")] = 1,
            [("/generated/alpha.py", "alpha")] = 3,
            [("/generated/bravo.py", "<module>")] = 1,
            [("/generated/bravo.py", "bravo")] = 5,
        }, generated);
    }

    [Fact]
    public void TopCountsEveryPythonAShellRunsPerProcess()
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, Fib);
        using var json = new TempFile();
        // One view for the whole run (the interval outlasts it): its rows are the calls of both Pythons, by pid.
        var result = PyprobeBinary.Run(["top", "--format", "json", "--interval", "120", "-o", json.Path, "--",
            "sh", "-c", "\"$0\" \"$2\" && \"$1\" \"$2\"", Existing(Pyenv39), CachedPythons.Get("3.14").LauncherPath, script.Path], timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["2584", "2584"], result.StdoutLines);
        var view = Assert.Single(File.ReadAllLines(json.Path), line => line.Length > 0);
        var fib = JsonDocument.Parse(view).RootElement.EnumerateArray().Where(row => row.GetProperty("funcname").GetString() == "fib").ToList();
        Assert.Equal(2, fib.Count);
        Assert.Equal(2, fib.Select(row => row.GetProperty("pid").GetInt32()).Distinct().Count());
        Assert.All(fib, row => Assert.Equal(8361, row.GetProperty("count").GetInt64()));
        Assert.Single(Followed().Matches(result.Stderr));
    }

    [Fact]
    public void PythonChildrenStartedWithSubprocessAreTracedEachWithItsPid()
    {
        using var child = new TempFile();
        File.WriteAllText(child.Path, Fib);
        using var parent = new TempFile();
        File.WriteAllText(parent.Path, Parent);
        using var json = new TempFile();
        var result = PyprobeBinary.Run(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "--", Existing(Pyenv312), parent.Path, child.Path],
            timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["2584", "2584", "2584", "2584"], result.StdoutLines);
        Assert.Contains(", 0 lost", result.Stderr);
        var perPid = FibEventsPerPid(json.Path);
        Assert.Equal(4, perPid.Count);
        Assert.All(perPid.Values, counts => Assert.Equal((8361, 8361), counts));
        Assert.Equal(3, Followed().Matches(result.Stderr).Count);
    }

    /// <summary>
    /// A Python that runs a new program in its own process (os.execv of the same binary: the pid stays): the new
    /// program is attached when it stops at its interpreter's start, and the old program's links are closed first, so
    /// the same probes do not fire twice; its fib(18) counts exactly once, for trace and calls, with the hook (3.12) and without (3.9).
    /// </summary>
    [Theory]
    [InlineData(Pyenv39)]
    [InlineData(Pyenv312)]
    public void APythonThatExecsAPythonIsTracedOnceUnderItsPid(string python)
    {
        using var script = new TempFile();
        File.WriteAllText(script.Path, "import os, sys\nif len(sys.argv) == 2:\n    os.execv(sys.executable, [sys.executable, sys.argv[0], sys.argv[1], 'again'])\n" + Fib);
        using var json = new TempFile();
        var trace = PyprobeBinary.Run(["trace", "function__entry", "function__return", "--format", "json", "-o", json.Path, "--", Existing(python), script.Path, "x"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.True(trace.ExitCode == 0, trace.ToString());
        Assert.Equal(["2584"], trace.StdoutLines);
        Assert.Contains(", 0 lost", trace.Stderr);
        var perPid = FibEventsPerPid(json.Path);
        Assert.Equal((8361, 8361), Assert.Single(perPid.Values));
        Assert.Contains($"pyprobe: pid {perPid.Keys.Single()} ran a new program ", trace.Stderr);
        Assert.Empty(Followed().Matches(trace.Stderr));

        using var rows = new TempFile();
        var calls = PyprobeBinary.Run(["calls", "--format", "json", "-o", rows.Path, "--", Existing(python), script.Path, "x"], timeout: TimeSpan.FromSeconds(120));
        Assert.True(calls.ExitCode == 0, calls.ToString());
        var fibRow = Assert.Single(JsonDocument.Parse(File.ReadAllText(rows.Path)).RootElement.EnumerateArray(), row => row.GetProperty("funcname").GetString() == "fib");
        Assert.Equal(8361, fibRow.GetProperty("count").GetInt64());
    }

    [Fact]
    public void CallsCountsEachFollowedPythonOnItsOwnRow()
    {
        using var child = new TempFile();
        File.WriteAllText(child.Path, Fib);
        using var parent = new TempFile();
        File.WriteAllText(parent.Path, Parent);
        using var json = new TempFile();
        // Debian 3.9 run by its binary: held before its exec and attached by file (USDT); its children are followed.
        var python = CachedPythons.Get("3.9");
        var result = PyprobeBinary.Run(["calls", "--format", "json", "-o", json.Path, "--", python.BinaryPath, parent.Path, child.Path],
            new Dictionary<string, string?> { ["LD_LIBRARY_PATH"] = python.LibraryPath }, TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(4, result.StdoutLines.Length);
        var fibRows = JsonDocument.Parse(File.ReadAllText(json.Path)).RootElement.EnumerateArray()
            .Where(row => row.GetProperty("funcname").GetString() == "fib").ToList();
        Assert.Equal(4, fibRows.Select(row => row.GetProperty("pid").GetInt32()).Distinct().Count());
        Assert.All(fibRows, row => Assert.Equal(8361, row.GetProperty("count").GetInt64()));
    }

    [Fact]
    public void SigtermRestoresTheHookOfAFollowedChildThatRunsOn()
    {
        using var loop = new TempFile();
        File.WriteAllText(loop.Path, "import time\ndef tick():\n    time.sleep(0.01)\nwhile True:\n    tick()\n");
        using var parent = new TempFile();
        File.WriteAllText(parent.Path, "import subprocess, sys\nsubprocess.Popen([sys.executable, sys.argv[1]]).wait()\n");
        using var trace = AttachedTracer.Start(["trace", "function__entry", "-o", "/dev/null", "--", Existing(Pyenv312), parent.Path, loop.Path], out _);
        int? childPid = null;
        try
        {
            while (trace.StandardError.ReadLine() is { } line)
            {
                if (Followed().Match(line) is { Success: true } m)
                {
                    childPid = int.Parse(m.Groups[1].Value);
                    break;
                }
            }
            Assert.True(childPid is not null, "the child was not followed");
            Assert.Equal([HookState.EvalFrameDefault], HookStates(childPid.Value));
            AttachedTracer.Signal(trace.Id, "TERM");
            // The child holds pyprobe's stderr open (it inherited it), so read up to the report line, not to the end.
            string? detached;
            while ((detached = trace.StandardError.ReadLine()) is not null && !detached.StartsWith("Detached after", StringComparison.Ordinal)) { }
            Assert.NotNull(detached);
            Assert.True(trace.WaitForExit(30_000), "pyprobe did not end after SIGTERM");
            // pyprobe passed SIGTERM to the command (the parent) and is gone; the child still runs, as it was.
            Assert.True(File.Exists($"/proc/{childPid}/stat"), "the child should still run");
            Assert.Equal([HookState.Unset], HookStates(childPid.Value));
        }
        finally
        {
            if (childPid is int pid) AttachedTracer.Signal(pid, "KILL");
            if (!trace.HasExited) trace.Kill();
        }
    }

    [Fact]
    public void TheLinksOfFollowedPythonsThatExitedAreClosed()
    {
        using var loop = new TempFile();
        File.WriteAllText(loop.Path, "import time\nwhile True:\n    time.sleep(0.01)\n");
        // Ten short Pythons one after the other, then one that runs on: each is attached as it starts.
        var python = Existing(Pyenv312);
        using var trace = AttachedTracer.Start(["trace", "function__entry", "-o", "/dev/null", "--", "sh", "-c",
            $"for i in 1 2 3 4 5 6 7 8 9 10; do '{python}' -c pass; done; exec '{python}' '{loop.Path}'"], out _);
        int? last = null;
        try
        {
            var fds = new List<int>();
            while (fds.Count < 10 && trace.StandardError.ReadLine() is { } line)
            {
                if (Followed().Match(line) is not { Success: true } m) continue;
                last = int.Parse(m.Groups[1].Value);
                fds.Add(Directory.GetFiles($"/proc/{trace.Id}/fd").Length);
            }
            Assert.Equal(10, fds.Count);
            // Each process has two links (entry, rets) while it lives; kept for the exited ones they would add 2 fds per Python.
            Assert.InRange(fds[^1] - fds[0], -4, 4);
        }
        finally
        {
            AttachedTracer.Signal(trace.Id, "TERM");
            if (last is int pid) AttachedTracer.Signal(pid, "KILL");
            if (!trace.WaitForExit(30_000)) trace.Kill();
        }
    }

    [Fact]
    public void TextLinesOfACommandThatIsNotAPythonCarryThePidFromTheFirst()
    {
        const string Hello = "def hello():\n    pass\nhello()\n";
        var python = CachedPythons.Get("3.9");
        // A shell that runs Debian 3.9 (its launcher) as a child: followed, so any number of Pythons may come.
        var shell = PyprobeBinary.Run(["trace", "--time", "none", "--", "sh", "-c", "\"$0\" -c \"$1\"", python.LauncherPath, Hello], timeout: TimeSpan.FromSeconds(60));
        Assert.True(shell.ExitCode == 0, shell.ToString());
        var line = Assert.Single(shell.StdoutLines, l => l.Contains("funcname=hello"));
        Assert.Matches(@"^\[(\d+)/\1\] function__entry filename=<string>, funcname=hello, lineno=1$", line);
        var flow = PyprobeBinary.Run(["flow", "--time", "none", "--", "sh", "-c", "\"$0\" -c \"$1\"", python.LauncherPath, Hello], timeout: TimeSpan.FromSeconds(60));
        Assert.True(flow.ExitCode == 0, flow.ToString());
        Assert.Matches(@"^ *(\d+)/\1 +-> hello \(<string>:1\)$", Assert.Single(flow.StdoutLines, l => l.Contains("-> hello (")));
        // calls shows the PID column for such a command too, with a single Python.
        var calls = PyprobeBinary.Run(["calls", "--", "sh", "-c", "\"$0\" -c \"$1\"", python.LauncherPath, Hello], timeout: TimeSpan.FromSeconds(60));
        Assert.True(calls.ExitCode == 0, calls.ToString());
        Assert.Matches(@"^ *PID +CALLS ", calls.StdoutLines[0]);
        Assert.Matches(@"^ *\d+ +1 .* hello \(<string>:1\)$", Assert.Single(calls.StdoutLines, l => l.Contains(" hello (")));
        // A Python without probes run by its binary is followed too, but it is the command: the seed's form stays.
        var direct = PyprobeBinary.Run(["trace", "function__entry", "--time", "none", "--", Existing(Pyenv312), "-c", Hello], timeout: TimeSpan.FromSeconds(60));
        Assert.True(direct.ExitCode == 0, direct.ToString());
        Assert.Equal("function__entry filename=<string>, funcname=hello, lineno=1", Assert.Single(direct.StdoutLines, l => l.Contains("funcname=hello")));
    }

    /// <summary>(function__entry, function__return) events of fib per pid.</summary>
    private static Dictionary<int, (int Entries, int Returns)> FibEventsPerPid(string path)
    {
        var output = new TraceOutput(File.ReadAllText(path));
        return output.Events.Where(e => e.GetProperty("funcname").GetString() == "fib")
            .GroupBy(e => e.GetProperty("pid").GetInt32())
            .ToDictionary(g => g.Key, g => (g.Count(e => e.GetProperty("probe").GetString() == "function__entry"), g.Count(e => e.GetProperty("probe").GetString() == "function__return")));
    }

    /// <summary>A pyenv build by its path (it must exist), or a Debian build by its version (its launcher).</summary>
    private static string Interpreter(string python) => python.StartsWith('/') ? Existing(python) : CachedPythons.Get(python).LauncherPath;

    private static string Existing(string python)
    {
        if (!File.Exists(python)) Assert.Fail($"{python} is missing: install it with pyenv");
        return python;
    }

    private static List<HookState> HookStates(int pid)
    {
        using var process = CPythonProcess.Attach(pid);
        return EvalFrameHook.Inspect(process).ToList();
    }

    [GeneratedRegex(@"pyprobe: followed pid (\d+) .*")]
    private static partial Regex Followed();
}
