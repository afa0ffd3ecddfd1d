using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;
using Pyprobe.Faults.Tests.Support;
using Pyprobe.Usdt;
using Pyprobe.Python.Processes;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// Several tracers on the same probes of one process: two pyprobes, and pyprobe beside bpftrace in
/// both start orders. The kernel refuses a second uprobe on a site whose semaphore offset differs
/// (including 0), so both tracers working proves pyprobe passes the note's semaphore offset.
/// </summary>
public partial class CoexistenceTests(ITestOutputHelper log)
{
    private const string Setup = "import gc\ngc.disable()\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\ndef work():\n    fib(15)\n    for _ in range(7):\n        gc.collect()\n";
    private const int FibCalls = 1973; // calls of fib(15)
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void TwoPyprobesOnOneTargetBothSeeEveryEventAndTheSemaphoreStaysUpUntilTheLastDetaches()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Command(), Setup, "work()\nsys.stdout.write('half\\n'); sys.stdout.flush()\nsys.stdin.readline()\nwork()\n");
        var process = PythonProcessResolver.Resolve(workload.Pid);
        using var first = new TempFile();
        using var second = new TempFile();
        string[] Args(string output) => ["trace", "function__entry", "gc__start", "--format", "json", "-o", output, "-p", workload.Pid.ToString()];

        using var a = TraceProcess.Start(Args(first.Path));
        using var b = TraceProcess.Start(Args(second.Path));
        workload.Go();
        workload.WaitLine("half", Timeout);

        a.Signal(Posix.SigInt);
        var resultA = a.Finish(Timeout);
        Assert.True(resultA.ExitCode == 0, resultA.ToString());
        var semaphores = TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary);
        Assert.True(semaphores["function__entry"] >= 1 && semaphores["gc__start"] >= 1, "semaphores dropped while the second pyprobe is attached: " + string.Join(", ", semaphores));

        workload.Go();
        workload.WaitFinished(Timeout);
        b.Signal(Posix.SigInt);
        var resultB = b.Finish(Timeout);
        Assert.True(resultB.ExitCode == 0, resultB.ToString());

        var (fibA, gcA) = Counts(first.Path);
        var (fibB, gcB) = Counts(second.Path);
        Assert.Equal((FibCalls, 7), (fibA, gcA));
        Assert.Equal((2 * FibCalls, 14), (fibB, gcB));
        Assert.Contains(", 0 lost", resultA.Stderr);
        Assert.Contains(", 0 lost", resultB.Stderr);
        Assert.All(TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary), s => Assert.Equal(0, s.Value));
        Assert.Empty(BpfObjects.UprobeMultiLinksFor(workload.Pid));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PyprobeAndBpftraceOnTheSameProbesBothCountExactly(bool bpftraceFirst)
    {
        Requirements.EnsureRoot();
        var bpftracePath = Requirements.EnsureProgram("bpftrace", "bpftrace");
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.ExecCommand(), Setup, "work()\n");
        var process = PythonProcessResolver.Resolve(workload.Pid);
        using var json = new TempFile();

        TraceProcess? pyprobe = null;
        Process? bpftrace = null;
        try
        {
            if (!bpftraceFirst) pyprobe = TraceProcess.Start(["trace", "function__entry", "gc__start", "--format", "json", "-o", json.Path, "-p", workload.Pid.ToString()]);
            bpftrace = StartBpftrace(bpftracePath, python.BinaryPath, workload.Pid, out var bpftraceOutput);
            if (bpftraceFirst) pyprobe = TraceProcess.Start(["trace", "function__entry", "gc__start", "--format", "json", "-o", json.Path, "-p", workload.Pid.ToString()]);
            var semaphores = TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary);
            Assert.True(semaphores["function__entry"] >= 1 && semaphores["gc__start"] >= 1, string.Join(", ", semaphores));

            workload.RunMeasuredPart(Timeout);

            pyprobe!.Signal(Posix.SigInt);
            var result = pyprobe.Finish(Timeout);
            Assert.True(result.ExitCode == 0, result.ToString());
            StopBpftrace(bpftrace);
            var text = bpftraceOutput.ToString();

            Assert.Equal((FibCalls, 7), Counts(json.Path));
            Assert.Contains(", 0 lost", result.Stderr);
            Assert.True(BpftraceCount(text, "fib") == FibCalls && BpftraceCount(text, "gc") == 7, $"bpftrace output: {text}");

            // bpftrace attaches with perf-event uprobes that carry the same semaphore offset: once both
            // have gone, the kernel has lowered every semaphore.
            Assert.True(Posix.WaitFor(() => TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary).Values.All(v => v == 0), TimeSpan.FromSeconds(5)),
                "semaphores after both tracers left: " + string.Join(", ", TargetMemory.ReadSemaphores(workload.Pid, process.HostPath, process.UsdtBinary)));
        }
        finally
        {
            pyprobe?.Dispose();
            if (bpftrace is { HasExited: false }) bpftrace.Kill();
            bpftrace?.Dispose();
        }
    }

    /// <summary>Starts bpftrace counting fib entries and gc starts; returns once its BEGIN probe ran, which bpftrace fires after attaching every probe.</summary>
    private static Process StartBpftrace(string bpftrace, string binary, int pid, out System.Text.StringBuilder output)
    {
        var program = $"BEGIN {{ printf(\"attached\\n\"); }} usdt:{binary}:python:function__entry /str(arg1) == \"fib\"/ {{ @fib = count(); }} usdt:{binary}:python:gc__start {{ @gc = count(); }}";
        var info = new ProcessStartInfo(bpftrace, ["-e", program, "-p", pid.ToString()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(info)!;
        var text = new System.Text.StringBuilder();
        var attached = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { attached.TrySetResult(); return; }
            lock (text) text.Append(e.Data).Append('\n');
            if (e.Data == "attached") attached.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.Append("stderr: ").Append(e.Data).Append('\n'); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!attached.Task.Wait(TimeSpan.FromSeconds(60)) || process.HasExited)
        {
            if (!process.HasExited) process.Kill();
            Assert.Fail($"bpftrace did not attach: {text}");
        }
        output = text;
        return process;
    }

    /// <summary>
    /// Stops bpftrace with SIGINT, its documented way to print its maps and exit. Once in ~20 CI runs
    /// bpftrace 0.17 did not exit within 30 s of it (pyprobe had already exited 0); then the test records
    /// where bpftrace's threads wait and sends SIGTERM, which bpftrace handles the same way, before failing.
    /// </summary>
    private void StopBpftrace(Process bpftrace)
    {
        Posix.Kill(bpftrace.Id, Posix.SigInt);
        if (bpftrace.WaitForExit(30_000)) { bpftrace.WaitForExit(); return; }
        var waits = WhereThreadsWait(bpftrace.Id);
        log.WriteLine($"bpftrace did not exit within 30 s of SIGINT; its threads: {waits}; sending SIGTERM");
        Posix.Kill(bpftrace.Id, Posix.SigTerm);
        Assert.True(bpftrace.WaitForExit(30_000), $"bpftrace did not stop after SIGINT or SIGTERM; its threads: {waits}");
        bpftrace.WaitForExit();
    }

    private static string WhereThreadsWait(int pid)
    {
        static string Read(string path) { try { return File.ReadAllText(path).Trim(); } catch (IOException) { return "?"; } catch (UnauthorizedAccessException) { return "?"; } }
        try
        {
            return string.Join("; ", Directory.GetDirectories($"/proc/{pid}/task").Select(task =>
                $"{Path.GetFileName(task)} {Read(task + "/comm")} wchan={Read(task + "/wchan")} stack=[{Read(task + "/stack").Replace('\n', ' ')}]"));
        }
        catch (DirectoryNotFoundException) { return "(exited)"; }
    }

    private static int BpftraceCount(string output, string map)
    {
        var match = Regex.Match(output, $@"^@{map}: (\d+)$", RegexOptions.Multiline);
        return match.Success ? int.Parse(match.Groups[1].Value) : -1;
    }

    private static (int Fib, int Gc) Counts(string jsonPath)
    {
        var output = new TraceOutput(File.ReadAllText(jsonPath));
        return (output.Count("function__entry", "funcname", "fib"), output.OfProbe("gc__start").Count());
    }
}
