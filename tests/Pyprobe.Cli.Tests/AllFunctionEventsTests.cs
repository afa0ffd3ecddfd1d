using System.Diagnostics;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `trace --all` with function events on CPython 3.12–3.14, which have no function probes that fire: every running
/// CPython is attached on its own, its eval-frame hook written (said once on stderr with the count), and put back when
/// pyprobe detaches. Runs in a pid namespace of its own (unshare --pid --fork --mount-proc), so --all sees only the
/// test's processes and never touches another program's Pythons on this machine.
/// </summary>
public sealed class AllFunctionEventsTests
{
    /// <summary>Says it is ready, runs fib(18) once "go" exists, then stays until "end" exists (so its hook can be read after pyprobe is gone).</summary>
    private const string Workload = """
        import os, sys, time
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        directory, tag = sys.argv[1], sys.argv[2]
        open(os.path.join(directory, "ready-" + tag), "w").close()
        while not os.path.exists(os.path.join(directory, "go")):
            time.sleep(0.01)
        print(fib(18), flush=True)
        while not os.path.exists(os.path.join(directory, "end")):
            time.sleep(0.01)
        """;

    private const string Pyenv312 = "/root/.pyenv/versions/3.12.1/bin/python3.12", Pyenv313 = "/root/.pyenv/versions/3.13.0/bin/python3.13";

    [Fact]
    public void EveryRunningPythonGetsTheHookExactCountsPerPidAndItIsRestored()
    {
        foreach (var python in new[] { Pyenv312, Pyenv313 })
            if (!File.Exists(python)) Assert.Fail($"{python} is missing: install it with pyenv");
        var directory = Directory.CreateTempSubdirectory("pyprobe-all-").FullName;
        try
        {
            var script = Path.Combine(directory, "workload.py");
            File.WriteAllText(script, Workload);
            var json = Path.Combine(directory, "trace.json");
            var err = Path.Combine(directory, "stderr.txt");
            // Two Pythons run before pyprobe starts, a third (pyenv 3.13) after it attached. The shell stays pid 1 until
            // "end" (its exit would kill the namespace).
            File.WriteAllText(Path.Combine(directory, "run.sh"), $"""
                cd '{directory}'
                '{Pyenv312}' '{script}' '{directory}' a > out-a.txt &
                '{CachedPythons.Get("3.14").LauncherPath}' '{script}' '{directory}' b > out-b.txt &
                while [ ! -e ready-a ] || [ ! -e ready-b ]; do sleep 0.05; done
                '{PyprobeBinary.Path}' trace function__entry function__return --all --format json -o '{json}' 2> '{err}' &
                while ! grep -q Attached '{err}'; do sleep 0.05; done
                '{Pyenv313}' '{script}' '{directory}' c > out-c.txt &
                while [ ! -e end ]; do sleep 0.05; done
                """);
            var info = new ProcessStartInfo("/usr/bin/unshare") { UseShellExecute = false };
            foreach (var a in new[] { "--pid", "--fork", "--mount-proc", "sh", Path.Combine(directory, "run.sh") }) info.ArgumentList.Add(a);
            using var unshare = Process.Start(info)!;
            try
            {
                WaitFor(() => File.Exists(err) && File.ReadAllText(err).Contains("Attached"), "pyprobe to attach", err);
                var stderr = File.ReadAllText(err);
                Assert.Contains("--all writes the eval-frame hook in 2 processes (CPython 3.12.1, CPython 3.14.", stderr);
                // The one started later is found (within 250 ms) and attached as it runs.
                WaitFor(() => File.ReadAllText(err).Contains("pyprobe: new pid "), "the later Python to be attached", err);
                Assert.Contains("(/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0): attached function__entry, function__return (uprobe on _PyEval_EvalFrameDefault with the eval-frame hook", File.ReadAllText(err));
                var pythons = HostPids(script);
                Assert.Equal(3, pythons.Count);
                Assert.All(pythons, pid => Assert.Equal([HookState.EvalFrameDefault], HookStates(pid)));

                File.WriteAllText(Path.Combine(directory, "go"), "");
                WaitFor(() => new[] { "a", "b", "c" }.All(tag => File.ReadAllText(Path.Combine(directory, $"out-{tag}.txt")).Trim() == "2584"), "the Pythons to print fib(18)", err);
                // The events are in the ring once fib returned; give the reader its 10 ms poll, then end pyprobe as a user would.
                Thread.Sleep(300);
                var pyprobe = Assert.Single(HostPids(json));
                AttachedTracer.Signal(pyprobe, "TERM");
                WaitFor(() => File.ReadAllText(err).Contains("Detached after"), "pyprobe to detach", err);
                WaitFor(() => !File.Exists($"/proc/{pyprobe}/stat"), "pyprobe to exit", err);

                // pyprobe is gone, the Pythons still run: each hook is NULL again.
                Assert.All(pythons, pid => Assert.Equal([HookState.Unset], HookStates(pid)));
                Assert.Contains(", 0 lost", File.ReadAllText(err));
                var output = new TraceOutput(File.ReadAllText(json));
                var fib = output.Events.Where(e => e.GetProperty("funcname").GetString() == "fib").GroupBy(e => e.GetProperty("pid").GetInt32()).ToList();
                Assert.Equal(3, fib.Count);
                foreach (var perPid in fib)
                {
                    Assert.Equal(8361, perPid.Count(e => e.GetProperty("probe").GetString() == "function__entry"));
                    Assert.Equal(8361, perPid.Count(e => e.GetProperty("probe").GetString() == "function__return"));
                }
            }
            finally
            {
                File.WriteAllText(Path.Combine(directory, "end"), "");
                if (!unshare.WaitForExit(10_000)) unshare.Kill(entireProcessTree: true);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void NoWriteLeavesOutTheProcessesThatNeedTheHookWithOneNote()
    {
        if (!File.Exists(Pyenv312)) Assert.Fail($"{Pyenv312} is missing: install it with pyenv");
        var directory = Directory.CreateTempSubdirectory("pyprobe-all-").FullName;
        try
        {
            var script = Path.Combine(directory, "workload.py");
            File.WriteAllText(script, Workload);
            var err = Path.Combine(directory, "stderr.txt");
            // Two pyenv 3.12 processes (only the hook gives their function events) and Debian 3.9 (USDT): --no-write keeps the 3.9 one.
            File.WriteAllText(Path.Combine(directory, "run.sh"), $"""
                cd '{directory}'
                '{Pyenv312}' '{script}' '{directory}' a &
                '{Pyenv312}' '{script}' '{directory}' b &
                '{CachedPythons.Get("3.9").LauncherPath}' '{script}' '{directory}' c &
                while [ ! -e ready-a ] || [ ! -e ready-b ] || [ ! -e ready-c ]; do sleep 0.05; done
                '{PyprobeBinary.Path}' trace function__entry --all --no-write --duration 0.5 -o /dev/null 2> '{err}'
                echo "exit $?" >> '{err}'
                touch end
                """);
            var info = new ProcessStartInfo("/usr/bin/unshare") { UseShellExecute = false };
            foreach (var a in new[] { "--pid", "--fork", "--mount-proc", "sh", Path.Combine(directory, "run.sh") }) info.ArgumentList.Add(a);
            using var unshare = Process.Start(info)!;
            if (!unshare.WaitForExit(60_000)) unshare.Kill(entireProcessTree: true);
            var stderr = File.ReadAllText(err);
            Assert.Contains("pyprobe: note: 2 processes (CPython 3.12.1) not traced: their function events need the eval-frame hook and --no-write forbids setting it", stderr);
            Assert.DoesNotContain("writes the eval-frame hook", stderr);
            Assert.Contains("python3.9 (every process)", stderr);
            Assert.Contains("exit 0", stderr);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void AllWithThePathOfABuildWithoutProbesHooksOnlyThatBinarysProcesses()
    {
        foreach (var python in new[] { Pyenv312, Pyenv313 })
            if (!File.Exists(python)) Assert.Fail($"{python} is missing: install it with pyenv");
        var directory = Directory.CreateTempSubdirectory("pyprobe-all-").FullName;
        try
        {
            var script = Path.Combine(directory, "workload.py");
            File.WriteAllText(script, Workload);
            var json = Path.Combine(directory, "trace.json");
            var err = Path.Combine(directory, "stderr.txt");
            // pyenv 3.12 (named) and 3.13 (not named) run before pyprobe starts, a second pyenv 3.12 after it attached.
            File.WriteAllText(Path.Combine(directory, "run.sh"), $"""
                cd '{directory}'
                '{Pyenv312}' '{script}' '{directory}' a > out-a.txt &
                '{Pyenv313}' '{script}' '{directory}' b > out-b.txt &
                while [ ! -e ready-a ] || [ ! -e ready-b ]; do sleep 0.05; done
                '{PyprobeBinary.Path}' trace function__entry function__return --all '{Pyenv312}' --format json -o '{json}' 2> '{err}' &
                while ! grep -q Attached '{err}'; do sleep 0.05; done
                '{Pyenv312}' '{script}' '{directory}' c > out-c.txt &
                while [ ! -e end ]; do sleep 0.05; done
                """);
            var info = new ProcessStartInfo("/usr/bin/unshare") { UseShellExecute = false };
            foreach (var a in new[] { "--pid", "--fork", "--mount-proc", "sh", Path.Combine(directory, "run.sh") }) info.ArgumentList.Add(a);
            using var unshare = Process.Start(info)!;
            try
            {
                WaitFor(() => File.Exists(err) && File.ReadAllText(err).Contains("Attached"), "pyprobe to attach", err);
                Assert.Contains("--all writes the eval-frame hook in 1 process (CPython 3.12.1)", File.ReadAllText(err));
                WaitFor(() => File.ReadAllText(err).Contains("pyprobe: new pid "), "the later Python to be attached", err);
                Assert.DoesNotContain("no USDT probes", File.ReadAllText(err));
                var pythons = HostPids(script);
                Assert.Equal(3, pythons.Count);
                var (named, other) = (pythons.Where(pid => File.ReadAllText($"/proc/{pid}/cmdline").StartsWith(Pyenv312, StringComparison.Ordinal)).ToList(),
                    pythons.Single(pid => File.ReadAllText($"/proc/{pid}/cmdline").StartsWith(Pyenv313, StringComparison.Ordinal)));
                Assert.Equal(2, named.Count);
                Assert.All(named, pid => Assert.Equal([HookState.EvalFrameDefault], HookStates(pid)));
                Assert.Equal([HookState.Unset], HookStates(other));

                File.WriteAllText(Path.Combine(directory, "go"), "");
                WaitFor(() => new[] { "a", "b", "c" }.All(tag => File.ReadAllText(Path.Combine(directory, $"out-{tag}.txt")).Trim() == "2584"), "the Pythons to print fib(18)", err);
                Thread.Sleep(300);
                var pyprobe = Assert.Single(HostPids(json));
                AttachedTracer.Signal(pyprobe, "TERM");
                WaitFor(() => File.ReadAllText(err).Contains("Detached after"), "pyprobe to detach", err);
                WaitFor(() => !File.Exists($"/proc/{pyprobe}/stat"), "pyprobe to exit", err);

                Assert.All(named, pid => Assert.Equal([HookState.Unset], HookStates(pid)));
                Assert.Contains(", 0 lost", File.ReadAllText(err));
                var fib = new TraceOutput(File.ReadAllText(json)).Events.Where(e => e.GetProperty("funcname").GetString() == "fib").GroupBy(e => e.GetProperty("pid").GetInt32()).ToList();
                Assert.Equal(named.Order(), fib.Select(perPid => perPid.Key).Order());
                foreach (var perPid in fib)
                {
                    Assert.Equal(8361, perPid.Count(e => e.GetProperty("probe").GetString() == "function__entry"));
                    Assert.Equal(8361, perPid.Count(e => e.GetProperty("probe").GetString() == "function__return"));
                }
            }
            finally
            {
                File.WriteAllText(Path.Combine(directory, "end"), "");
                if (!unshare.WaitForExit(10_000)) unshare.Kill(entireProcessTree: true);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Host pids of the processes whose command line names <paramref name="argument"/> (the namespace's pids differ).</summary>
    private static List<int> HostPids(string argument)
    {
        var pids = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid)) continue;
            try
            {
                var arguments = File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0');
                if (arguments.Contains(argument) && !arguments[0].EndsWith("sh", StringComparison.Ordinal)) pids.Add(pid);
            }
            catch (IOException) { }
        }
        return pids;
    }

    private static void WaitFor(Func<bool> condition, string what, string stderrFile)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                if (condition()) return;
            }
            catch (IOException) { }
            Thread.Sleep(20);
        }
        Assert.Fail($"timed out waiting for {what}; pyprobe's stderr: {(File.Exists(stderrFile) ? File.ReadAllText(stderrFile) : "(none)")}");
    }

    private static List<HookState> HookStates(int pid)
    {
        using var process = CPythonProcess.Attach(pid);
        return EvalFrameHook.Inspect(process).ToList();
    }
}
