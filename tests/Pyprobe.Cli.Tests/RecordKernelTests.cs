using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// record --kernel: the kernel's frames under the C frames of each sample (bpf_get_stack, named from /proc/kallsyms). A
/// program blocked in os.read on a pipe shows, off its CPU (--idle), the kernel's pipe read and the scheduler under
/// libc's read; one making stat() calls shows, on its CPU, the system call's entry under libc. Kernel frames are always
/// the innermost, and pyprobe's own program (run by the switch tracepoint) is never one of them.
/// </summary>
public class RecordKernelTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "kernel_calls.py");

    private static bool IsKernel(string frame) => Regex.IsMatch(frame, @" \(\[[\w.-]+\]\)$");

    private static List<(string[] Frames, long Count)> Record(string interpreter, params string[] options)
    {
        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-kernel-{Guid.NewGuid():N}.folded");
        var start = new ProcessStartInfo(CachedPythons.Executable(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Workload);
        using var workload = Process.Start(start)!;
        try
        {
            var line = workload.StandardOutput.ReadLineAsync();
            Assert.True(line.Wait(TimeSpan.FromSeconds(30)) && line.Result == "ready", $"the workload did not start on {interpreter}");
            var result = PyprobeBinary.Run(["record", "--kernel", .. options, "-f", "collapsed", "-o", output, "-p", workload.Id.ToString(), "--duration", "4"],
                timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Matches(@"Kernel: \d+ of the stacks taken had kernel frames", result.Stderr);
            var stacks = File.ReadAllLines(output).Where(l => l.Length > 0).Select(l =>
            {
                var space = l.LastIndexOf(' ');
                return (l[..space].Split(';'), long.Parse(l[(space + 1)..]));
            }).ToList();
            foreach (var (frames, _) in stacks)
            {
                var text = string.Join(";", frames);
                // Innermost, all of them together; never pyprobe's program or the tracepoint's call of it.
                var first = Array.FindIndex(frames, IsKernel);
                if (first >= 0) Assert.True(frames.Skip(first).All(IsKernel), text);
                Assert.DoesNotContain(frames, f => f.EndsWith("([bpf])", StringComparison.Ordinal) || f.StartsWith("bpf_trace_run", StringComparison.Ordinal));
            }
            return stacks;
        }
        finally
        {
            workload.Kill();
            File.Delete(output);
        }
    }

    private static long Samples(List<(string[] Frames, long Count)> stacks, string function, Func<string[], bool> also) =>
        stacks.Where(s => s.Frames.Any(f => f.StartsWith(function + " (", StringComparison.Ordinal)) && also(s.Frames)).Sum(s => s.Count);

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.11")]
    public void OffCpu_APipeReadWaitsInTheKernelsPipeRead(string interpreter)
    {
        var stacks = Record(interpreter, "--idle");
        var waiting = Samples(stacks, "wait_for_data", _ => true);
        var inPipeRead = Samples(stacks, "wait_for_data", f =>
        {
            var read = Array.FindIndex(f, x => Regex.IsMatch(x, @"^read \(libc\.so\.6\)$"));
            var pipe = Array.FindIndex(f, x => Regex.IsMatch(x, @"^\w*pipe_read \(\[kernel\]\)$"));
            return read >= 0 && pipe > read && f[^1] == "__schedule ([kernel])";
        });
        // ~150 samples in 4 s; the few that are not are the wait already under way when pyprobe attached, read from user space.
        Assert.True(waiting >= 100, $"{waiting} samples in wait_for_data");
        Assert.True(inPipeRead >= waiting * 8 / 10, $"{inPipeRead} of {waiting} wait_for_data samples in libc read > pipe_read > __schedule");
    }

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.11")]
    public void OnCpu_SystemCallsShowTheKernelsEntryUnderLibc(string interpreter)
    {
        var stacks = Record(interpreter, "-r", "199");
        var statting = Samples(stacks, "stat_loop", _ => true);
        var inKernel = Samples(stacks, "stat_loop", f =>
        {
            var first = Array.FindIndex(f, IsKernel);
            return first > 0 && f[first - 1].EndsWith("(libc.so.6)", StringComparison.Ordinal) && f.Contains("do_syscall_64 ([kernel])");
        });
        // About a third of stat_loop's samples are in the kernel here (a PVM guest's system calls are dear); a tenth at least anywhere.
        Assert.True(statting >= 150, $"{statting} samples in stat_loop");
        Assert.True(inKernel >= statting / 10, $"{inKernel} of {statting} stat_loop samples in the kernel under libc");
    }
}
