using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// pyprobe record on every interpreter on the machine (pyenv builds without probes, Debian builds with them,
/// the newest started through their own loader by a launcher script): known CPU shares, a 150-deep recursion
/// whole and in order, the hot line, threads by id, generators and coroutines, a sleeping thread absent.
/// </summary>
public partial class RecordTests
{
    private static readonly string Workloads = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads");

    public static TheoryData<string> Interpreters => new()
    {
        "pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0",
        "debian:3.9", "debian:3.11", "debian:3.13", "debian:3.14", "debian:3.15",
    };

    private static string Python(string interpreter) => CachedPythons.Executable(interpreter);

    /// <summary>Collapsed stacks as (frames root first, count).</summary>
    private static List<(string[] Frames, long Count)> ReadCollapsed(string path) =>
        File.ReadAllLines(path).Where(l => l.Length > 0).Select(line =>
        {
            var space = line.LastIndexOf(' ');
            return (line[..space].Split(';'), long.Parse(line[(space + 1)..]));
        }).ToList();

    private static string Temp(string extension) => Path.Combine(Path.GetTempPath(), $"pyprobe-record-{Guid.NewGuid():N}.{extension}");

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void CpuSharesFollowTheWorkAtTheDefaultRate(string interpreter)
    {
        var output = Temp("folded");
        try
        {
            var result = PyprobeBinary.Run(["record", "-f", "collapsed", "-o", output, "--", Python(interpreter), Path.Combine(Workloads, "cpu_split.py"), "5"], timeout: TimeSpan.FromSeconds(180));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("via CPU-clock perf events at 99 Hz", result.Stderr);
            var stacks = ReadCollapsed(output);
            long Samples(string function) => stacks.Where(s => s.Frames[^1].StartsWith("spin (", StringComparison.Ordinal) && s.Frames.Any(f => f.StartsWith(function + " (", StringComparison.Ordinal))).Sum(s => s.Count);
            var heavy = Samples("heavy");
            var light = Samples("light");
            Assert.True(heavy + light >= 300, $"only {heavy + light} samples in spin(): {result}");
            var share = (double)heavy / (heavy + light);
            Assert.True(Math.Abs(share - 0.75) <= 0.05, $"heavy() has {share:P1} of the samples (heavy {heavy}, light {light}); expected 75% ± 5 points");
            // The script's stacks start at its module; start-up imports (run from C) have their own roots.
            var script = Path.Combine(Workloads, "cpu_split.py");
            Assert.All(stacks.Where(s => s.Frames.Any(f => f.StartsWith($"main ({script}:", StringComparison.Ordinal))), s => Assert.Equal($"<module> ({script}:28)", s.Frames[0]));
            Assert.Matches(@"\d+ samples of 1 process: \d+ with a Python stack, \d+ with no Python frame, 0 truncated, 0 lost", result.Stderr);
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>The first line the process prints, or null when none comes in time.</summary>
    private static string? FirstLine(System.Diagnostics.Process process, TimeSpan timeout)
    {
        var line = process.StandardOutput.ReadLineAsync();
        return line.Wait(timeout) ? line.Result : null;
    }

    [GeneratedRegex(@"tids coroutine=(\d+) generator=(\d+) recursion=(\d+) sleeper=(\d+)")]
    private static partial Regex TidsLine();

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void StacksKeepTheirShapeDepthLinesAndThreads(string interpreter)
    {
        var output = Temp("folded");
        var script = Path.Combine(Workloads, "profile_shapes.py");
        try
        {
            // Attach once every thread runs (the sleeper is asleep by then): a thread's first moments on a CPU are
            // not what this test is about.
            var start = new System.Diagnostics.ProcessStartInfo(Python(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
            start.ArgumentList.Add(script);
            start.ArgumentList.Add("6");
            using var workload = System.Diagnostics.Process.Start(start)!;
            var line = FirstLine(workload, TimeSpan.FromSeconds(30));
            var tids = TidsLine().Match(line ?? "");
            Assert.True(tids.Success, $"the workload said '{line}'");
            Thread.Sleep(100);
            var result = PyprobeBinary.Run(["record", "--threads", "-r", "199", "-f", "collapsed", "-o", output, "-p", workload.Id.ToString(), "--duration", "3"], timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            workload.Kill();
            var (coroutine, generator, recursion, sleeper) = (tids.Groups[1].Value, tids.Groups[2].Value, tids.Groups[3].Value, tids.Groups[4].Value);
            var stacks = ReadCollapsed(output);
            List<(string[] Frames, long Count)> OnThread(string tid) => stacks.Where(s => s.Frames[0].StartsWith($"thread {tid}", StringComparison.Ordinal)).ToList();

            // The recursion: every sample of the thread below hot_loop has exactly 150 descend() frames in a row.
            var deep = OnThread(recursion).Where(s => s.Frames.Any(f => f.StartsWith("hot_loop (", StringComparison.Ordinal))).ToList();
            Assert.True(deep.Sum(s => s.Count) >= 20, $"{deep.Sum(s => s.Count)} samples in hot_loop: {result}");
            foreach (var (frames, _) in deep)
            {
                var names = frames.Select(f => f[..f.IndexOf(" (", StringComparison.Ordinal)]).ToList();
                var first = names.IndexOf("descend");
                Assert.Equal(Enumerable.Repeat("descend", 150), names.Skip(first).Take(150));
                Assert.Equal("hot_loop", names[first + 150]);
                Assert.Equal("recursion", names[first - 1]);
                Assert.Equal($"descend ({script}:28)", frames[first + 149]);
                Assert.All(frames.Skip(first).Take(149), f => Assert.Equal($"descend ({script}:29)", f));
            }
            // The hot line of hot_loop is the sum() call: most of its own samples are there.
            var inLoop = deep.Where(s => s.Frames[^1].StartsWith("hot_loop (", StringComparison.Ordinal)).ToList();
            var onHotLine = inLoop.Where(s => s.Frames[^1] == $"hot_loop ({script}:22)").Sum(s => s.Count);
            Assert.True(onHotLine >= 0.7 * inLoop.Sum(s => s.Count), $"{onHotLine} of {inLoop.Sum(s => s.Count)} hot_loop samples on the sum() line");

            // A generator's frames sit on its consumer's; a coroutine's on the event loop's.
            Assert.Contains(OnThread(generator), s => s.Frames.Any(f => f.StartsWith("produce (", StringComparison.Ordinal)) && s.Frames.Any(f => f.StartsWith("generator (", StringComparison.Ordinal)));
            Assert.Contains(OnThread(coroutine), s => s.Frames.Any(f => f.StartsWith("crunch (", StringComparison.Ordinal)) && s.Frames.Any(f => f.StartsWith("coroutine (", StringComparison.Ordinal)));
            // Each thread's root names it as Python does (threading.Thread's name; the kernel's is python3.x up to 3.13).
            foreach (var (tid, name) in new[] { (recursion, "recursion"), (generator, "generator"), (coroutine, "coroutine") })
                Assert.All(OnThread(tid), s => Assert.Equal($"thread {tid} ({name})", s.Frames[0]));
            // A sleeping thread is not on a CPU, so a CPU profile never sees it.
            Assert.Empty(OnThread(sleeper));
            Assert.DoesNotContain(stacks, s => s.Frames.Any(f => f.StartsWith("sleeper (", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void ARunningProcessIsSampledUntilTheDuration(string interpreter)
    {
        var output = Temp("folded");
        using var target = RunningProcess.PythonScript(Python(interpreter), Path.Combine(Workloads, "cpu_split.py"), "30");
        try
        {
            Thread.Sleep(300);
            var result = PyprobeBinary.Run(["record", "-p", target.Pid.ToString(), "--duration", "2", "-f", "collapsed", "-o", output], timeout: TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Matches(@"Detached after 2\.\d\d s", result.Stderr);
            Assert.Contains($"pid {target.Pid} (CPython 3.", result.Stderr);
            Assert.Contains(ReadCollapsed(output), s => s.Frames.Any(f => f.StartsWith("heavy (", StringComparison.Ordinal)));
            Assert.True(File.Exists($"/proc/{target.Pid}/stat"), "the target kept running");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void EveryFormatIsWrittenAndReadsBack()
    {
        var python = Python("pyenv:3.12.1");
        var script = Path.Combine(Workloads, "cpu_split.py");
        var svg = Temp("svg");
        var speedscope = Temp("json");
        var pprof = Temp("pb.gz");
        try
        {
            foreach (var (format, path) in new[] { ("flamegraph", svg), ("speedscope", speedscope), ("pprof", pprof) })
            {
                var result = PyprobeBinary.Run(["record", "-f", format, "-o", path, "--", python, script, "1"], timeout: TimeSpan.FromSeconds(30));
                Assert.True(result.ExitCode == 0, result.ToString());
                Assert.Contains($"to {path}", result.Stderr);
            }
            var titles = XDocument.Load(svg).Descendants().Where(e => e.Name.LocalName == "title").Select(e => e.Value).ToList();
            Assert.Contains(titles, t => t.StartsWith($"heavy ({script}:", StringComparison.Ordinal));
            using (var document = JsonDocument.Parse(File.ReadAllText(speedscope)))
            {
                Assert.Equal("https://www.speedscope.app/file-format-schema.json", document.RootElement.GetProperty("$schema").GetString());
                var names = document.RootElement.GetProperty("shared").GetProperty("frames").EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
                Assert.Contains("heavy", names);
                Assert.Contains("light", names);
            }
            using (var gzip = new GZipStream(File.OpenRead(pprof), CompressionMode.Decompress))
            using (var bytes = new MemoryStream())
            {
                gzip.CopyTo(bytes);
                Assert.True(bytes.Length > 100);
                Assert.Contains("heavy", System.Text.Encoding.UTF8.GetString(bytes.ToArray()));
            }
        }
        finally
        {
            File.Delete(svg);
            File.Delete(speedscope);
            File.Delete(pprof);
        }
    }

    /// <summary>
    /// The profile is written whole through a temporary file renamed over the destination — but a FIFO (like /dev/null or
    /// a terminal, a file to write into) is written in place and stays a FIFO, and a symlink stays a symlink with the
    /// profile in its target. (A rename once replaced /dev/null with a regular file for the whole machine.)
    /// </summary>
    [Fact]
    public void SpecialFilesAndSymlinksAreWrittenIntoNotReplaced()
    {
        var folder = Directory.CreateTempSubdirectory("pyprobe-record-out-").FullName;
        try
        {
            var fifo = Path.Combine(folder, "profile.fifo");
            using (var mkfifo = Process.Start("mkfifo", [fifo])!) Assert.True(mkfifo.WaitForExit(10_000) && mkfifo.ExitCode == 0, "mkfifo failed");
            Assert.True(IsFifo(fifo));
            string? written = null;
            var reader = new Thread(() => written = File.ReadAllText(fifo)) { IsBackground = true };
            reader.Start();
            var script = Path.Combine(Workloads, "cpu_split.py");
            var result = PyprobeBinary.Run(["record", "-f", "collapsed", "-o", fifo, "--", Python("pyenv:3.12.1"), script, "1"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "nothing was written into the FIFO");
            Assert.Contains($"heavy ({script}:", written);
            Assert.True(IsFifo(fifo), "the FIFO was replaced by a regular file");

            var target = Path.Combine(folder, "target.folded");
            var link = Path.Combine(folder, "link.folded");
            File.WriteAllText(target, "old");
            File.CreateSymbolicLink(link, target);
            result = PyprobeBinary.Run(["record", "-f", "collapsed", "-o", link, "--", Python("pyenv:3.12.1"), script, "1"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(target, new FileInfo(link).LinkTarget);
            Assert.Contains($"heavy ({script}:", File.ReadAllText(target));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// A profile is written only after the last sample, so a destination that cannot be written ends the run before the
    /// first one: the command to sample is never started, and no temporary file is left behind.
    /// </summary>
    [Fact]
    public void AnUnwritableDestinationFailsBeforeSampling()
    {
        var folder = Directory.CreateTempSubdirectory("pyprobe-record-out-").FullName;
        try
        {
            var marker = Path.Combine(folder, "started");
            var missing = Path.Combine(folder, "missing", "profile.svg");
            var cases = new (string Output, string Says)[]
            {
                (missing, $"pyprobe: cannot write {missing}: there is no folder {Path.GetDirectoryName(missing)}"),
                (folder, $"pyprobe: cannot write {folder}: it is a folder"),
            };
            foreach (var (output, says) in cases)
            {
                var result = PyprobeBinary.Run(["record", "-o", output, "--", Python("pyenv:3.12.1"), "-c", $"open('{marker}', 'w')"]);
                Assert.True(result.ExitCode == 1, result.ToString());
                Assert.Equal(says, Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
                Assert.False(File.Exists(marker), $"-o {output}: the command ran");
                Assert.Empty(Directory.GetFileSystemEntries(folder));
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static bool IsFifo(string path)
    {
        var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%F", path]) { RedirectStandardOutput = true })!;
        var kind = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return kind == "fifo";
    }

    [Fact]
    public void WithoutAnOutputFileTheFlameGraphIsNamedAfterThePidAndTime()
    {
        var folder = Directory.CreateTempSubdirectory("pyprobe-record-").FullName;
        try
        {
            var result = PyprobeBinary.RunIn(folder, ["record", "--", Python("pyenv:3.11.7"), Path.Combine(Workloads, "cpu_split.py"), "1"]);
            Assert.True(result.ExitCode == 0, result.ToString());
            var file = Assert.Single(Directory.GetFiles(folder));
            Assert.Matches(@"^pyprobe-\d+-\d{8}-\d{6}\.svg$", Path.GetFileName(file));
            Assert.Contains($"Wrote the flame graph to {Path.GetFileName(file)}", result.Stderr);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void BadInputIsOneLineAndNonZero()
    {
        using var sleeper = RunningProcess.Start("/bin/sleep", "30");
        var cases = new (string[] Args, int Exit, string Says)[]
        {
            (["record", "-p", sleeper.Pid.ToString()], 1, "is not a Python interpreter"),
            (["record", "-p", "999999"], 1, "no process with PID 999999"),
            (["record", "-r", "0", "-p", "1"], 2, "--rate must be between 1 and"),
            (["record", "-f", "svg", "-p", "1"], 2, "invalid format 'svg'"),
            (["record", "--max-depth", "5000", "-p", "1"], 2, "--max-depth must be between 1 and 1024"),
            (["record"], 2, "no target"),
        };
        foreach (var (args, exit, says) in cases)
        {
            var result = PyprobeBinary.Run(args);
            Assert.True(result.ExitCode == exit, $"{string.Join(' ', args)}: {result}");
            var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(says, line);
        }
    }
}
