using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// A Python chrooted into a Debian interpreter's root, in its own pid namespace (unshare --pid --fork --mount-proc),
/// where it is pid 1 and its threads have ids of their own: record finds it by its host pid (-p) and among every
/// Python (--all), walks the stacks of both its threads, and shows the threads by their host ids, as perf and
/// pyprobe's trace events do (the ids /proc shows to whoever runs pyprobe).
/// </summary>
public partial class RecordTests
{
    private const string JailedScript = "/work/namespace_threads.py";

    [GeneratedRegex(@"^tids (\d+) (\d+)$")]
    private static partial Regex TidsOfJailedPython();

    public static TheoryData<string> JailedVersions => new() { "3.9", "3.11", "3.14" };

    [Theory]
    [MemberData(nameof(JailedVersions))]
    public void APythonInAChrootWithItsOwnPidNamespaceIsRecordedWithHostIds(string version)
    {
        using var jail = JailedPython.Start(CachedPythons.Get(version), Path.Combine(Workloads, "namespace_threads.py"), seconds: 60);
        var hostPid = jail.HostPid;
        var (mainInside, spinnerInside) = jail.InsideTids;
        Assert.Equal(1, mainInside); // the namespace's init: the ids inside and outside differ
        var hostTids = HostTidsByInsideTid(hostPid);
        var (mainHost, spinnerHost) = (hostTids[mainInside], hostTids[spinnerInside]);
        Assert.Equal(hostPid, mainHost);
        Assert.NotEqual(spinnerInside, spinnerHost);

        // dump: the threads by their host ids, as /proc here and record know them, under their Python names. Both spin in
        // Python, so one holds the GIL and the other waits for it (or runs, just handed it).
        var dump = PyprobeBinary.Run(["dump", "-p", hostPid.ToString()], timeout: TimeSpan.FromSeconds(30));
        Assert.True(dump.ExitCode == 0, dump.ToString());
        var threadLines = dump.Stdout.Split('\n').Where(l => l.StartsWith("Thread ", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, threadLines.Count);
        Assert.Contains(threadLines, l => Regex.IsMatch(l, $@"^Thread {mainHost} \(MainThread\) \((holds the GIL|idle|running without the GIL)\)$"));
        Assert.Contains(threadLines, l => Regex.IsMatch(l, $@"^Thread {spinnerHost} \(spinner\) \((holds the GIL|idle|running without the GIL)\)$"));
        Assert.True(threadLines.Count(l => l.EndsWith("(holds the GIL)", StringComparison.Ordinal)) <= 1, dump.Stdout);

        // -p with the host pid.
        var output = Temp("folded");
        try
        {
            var result = PyprobeBinary.Run(["record", "--threads", "-r", "999", "--duration", "4", "-f", "collapsed", "-o", output, "-p", hostPid.ToString()], timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains($"pid {hostPid} (CPython {version}.", result.Stderr);
            var taken = long.Parse(Regex.Match(result.Stderr, @"(\d+) samples of 1 process").Groups[1].Value);
            var noPython = long.Parse(Regex.Match(result.Stderr, @"(\d+) with no Python frame").Groups[1].Value);
            // Both threads run Python all the time: a walk that failed to find a thread's state would show here.
            Assert.True(noPython <= Math.Max(3, taken / 50), result.ToString());
            var stacks = ReadCollapsed(output);
            // Host ids, with the names the threads have in Python (read with the ids they see inside).
            Assert.All(stacks, s => Assert.Contains(s.Frames[0], new[] { $"thread {mainHost} (MainThread)", $"thread {spinnerHost} (spinner)" }));
            var main = stacks.Where(s => s.Frames[0].StartsWith($"thread {mainHost} (", StringComparison.Ordinal)).ToList();
            var spinner = stacks.Where(s => s.Frames[0].StartsWith($"thread {spinnerHost} (", StringComparison.Ordinal)).ToList();
            // Each thread's frames are its own: the walk matched each thread to its own thread state.
            Assert.All(spinner, s => Assert.StartsWith($"spinner ({JailedScript}:", s.Frames[^1]));
            Assert.All(main, s => Assert.StartsWith($"<module> ({JailedScript}:", s.Frames[1]));
            Assert.True(spinner.Sum(s => s.Count) >= 100, $"{spinner.Sum(s => s.Count)} samples of the spinner thread: {result}");
            AssertHeavyShare(main, result.ToString());
        }
        finally
        {
            File.Delete(output);
        }

        // --all finds it among every Python on the machine.
        output = Temp("folded");
        try
        {
            var result = PyprobeBinary.Run(["record", "--all", "-r", "499", "--duration", "4", "-f", "collapsed", "-o", output], timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            var ours = ReadCollapsed(output).Where(s => s.Frames.Any(f => f.Contains($"({JailedScript}:", StringComparison.Ordinal))).ToList();
            Assert.Contains(ours, s => s.Frames[^1].StartsWith($"spinner ({JailedScript}:", StringComparison.Ordinal));
            AssertHeavyShare(ours, result.ToString());
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>
    /// heavy() has three quarters of the samples in spin() below heavy() or light(): within 5 points, or three
    /// standard deviations of the share where a busy machine left fewer samples than that needs (about 700).
    /// </summary>
    private static void AssertHeavyShare(List<(string[] Frames, long Count)> stacks, string context)
    {
        long Samples(string function) => stacks.Where(s => s.Frames[^1].StartsWith("spin (", StringComparison.Ordinal) && s.Frames.Any(f => f.StartsWith($"{function} ({JailedScript}:", StringComparison.Ordinal))).Sum(s => s.Count);
        var (heavy, light) = (Samples("heavy"), Samples("light"));
        Assert.True(heavy + light >= 150, $"only {heavy + light} samples in heavy() and light(): {context}");
        var share = (double)heavy / (heavy + light);
        var tolerance = Math.Max(0.05, 3 * Math.Sqrt(0.75 * 0.25 / (heavy + light)));
        Assert.True(Math.Abs(share - 0.75) <= tolerance, $"heavy() has {share:P1} (heavy {heavy}, light {light}); expected 75% ± {tolerance * 100:0} points: {context}");
    }

    /// <summary>Each thread's id inside its pid namespace → its id on the host (the last and first NSpid fields).</summary>
    private static Dictionary<int, int> HostTidsByInsideTid(int pid) =>
        Directory.GetDirectories($"/proc/{pid}/task")
            .Select(task => File.ReadAllLines(Path.Combine(task, "status")).Single(l => l.StartsWith("NSpid:", StringComparison.Ordinal)))
            .Select(line => line[6..].Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())
            .ToDictionary(ids => ids[^1], ids => ids[0]);

    /// <summary>
    /// A Debian interpreter's root bind-mounted (read-only, in a mount namespace of its own) into a fresh directory,
    /// with the host's libraries below /lib for what the root lacks, chrooted into and run as pid 1 of a new pid
    /// namespace. The workload is copied to /work inside.
    /// </summary>
    private sealed class JailedPython : IDisposable
    {
        private readonly Process _unshare;
        private readonly string _root;

        private JailedPython(Process unshare, string root, int hostPid, (int, int) insideTids)
        {
            _unshare = unshare;
            _root = root;
            HostPid = hostPid;
            InsideTids = insideTids;
        }

        public int HostPid { get; }
        public (int Main, int Spinner) InsideTids { get; }

        public static JailedPython Start(CachedPython python, string workload, int seconds)
        {
            foreach (var program in new[] { "/usr/bin/unshare", "/usr/sbin/chroot" })
                if (!File.Exists(program)) Assert.Fail($"{program} is missing (util-linux, coreutils)");
            var root = Directory.CreateTempSubdirectory("pyprobe-jail-").FullName;
            foreach (var dir in new[] { "usr", "lib/x86_64-linux-gnu", "lib64", "work" }) Directory.CreateDirectory(Path.Combine(root, dir));
            File.Copy(workload, Path.Combine(root, "work", Path.GetFileName(workload)));
            var binary = $"/usr/bin/python{python.Version}";
            // 3.13+ need the loader and libc of their own root (its /usr/lib/x86_64-linux-gnu inside), the host's libraries after them.
            var (environment, run) = python.NeedsOwnLoader
                ? ("", $"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu {binary}")
                : ("LD_LIBRARY_PATH=/lib/x86_64-linux-gnu ", binary);
            var inside = string.Join(" && ",
                "mount --bind -o ro \"$2/usr\" \"$1/usr\"",
                "mount --bind -o ro /usr/lib/x86_64-linux-gnu \"$1/lib/x86_64-linux-gnu\"",
                "mount --bind -o ro /usr/lib64 \"$1/lib64\"",
                $"exec env -i {environment}PYTHONDONTWRITEBYTECODE=1 /usr/sbin/chroot \"$1\" {run} \"$3\" \"$4\"");
            var start = new ProcessStartInfo("/usr/bin/unshare") { RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", inside, "sh", root, Path.GetFullPath(Path.Combine(Path.GetDirectoryName(python.BinaryPath)!, "..", "..")), JailedScript, seconds.ToString() })
                start.ArgumentList.Add(a);
            var unshare = Process.Start(start)!;
            try
            {
                var line = unshare.StandardOutput.ReadLineAsync();
                if (!line.Wait(TimeSpan.FromSeconds(30)) || TidsOfJailedPython().Match(line.Result ?? "") is not { Success: true } tids)
                    throw new InvalidOperationException($"the jailed Python {python.Version} did not start: '{(line.IsCompleted ? line.Result : "(nothing in 30 s)")}'");
                var hostPid = int.Parse(File.ReadAllText($"/proc/{unshare.Id}/task/{unshare.Id}/children").Trim());
                Assert.Contains(binary + "\0", File.ReadAllText($"/proc/{hostPid}/cmdline"));
                return new JailedPython(unshare, root, hostPid, (int.Parse(tids.Groups[1].Value), int.Parse(tids.Groups[2].Value)));
            }
            catch
            {
                Stop(unshare, root);
                throw;
            }
        }

        /// <summary>pid 1 of a namespace ignores SIGTERM: SIGKILL to unshare and the Python below it ends the namespace and its mounts.</summary>
        private static void Stop(Process unshare, string root)
        {
            try { unshare.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
            unshare.WaitForExit(10_000);
            unshare.Dispose();
            Directory.Delete(root, recursive: true);
        }

        public void Dispose() => Stop(_unshare, _root);
    }
}
