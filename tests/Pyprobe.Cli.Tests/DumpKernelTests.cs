using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// dump --kernel: where a blocked thread is in the kernel, under its C frames. A Python blocked in os.read on a pipe no
/// one writes to shows the kernel's pipe read innermost, the system call's entry under libc's read, then the Python
/// line that called it; plain dump shows no kernel frame.
/// </summary>
public class DumpKernelTests
{
    private const string Script = "import os\nr, w = os.pipe()\nprint('ready', flush=True)\n\ndef wait_for_data():\n    return os.read(r, 1)\n\nwait_for_data()\n";

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.9.18")]
    public void ABlockedPipeReadShowsTheKernelsPipeReadUnderLibc(string interpreter)
    {
        var start = new ProcessStartInfo(CachedPythons.Executable(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Script);
        using var python = Process.Start(start)!;
        try
        {
            Assert.Equal("ready", FirstLine(python, TimeSpan.FromSeconds(30)));
            var pid = python.Id.ToString();
            // Until the read has begun (the kernel stack ends in the pipe read), at most 5 s.
            string[] frames = [];
            for (var attempt = 0; attempt < 50 && (frames.Length == 0 || !Regex.IsMatch(frames[0], @"pipe_read \(\[kernel\]\)$")); attempt++)
            {
                if (attempt > 0) Thread.Sleep(100);
                var dump = PyprobeBinary.Run(["dump", "--kernel", "-p", pid], timeout: TimeSpan.FromSeconds(30));
                Assert.True(dump.ExitCode == 0, dump.ToString());
                frames = dump.Stdout.Split('\n').SkipWhile(l => !l.StartsWith($"Thread {pid} ", StringComparison.Ordinal)).Skip(1)
                    .TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal)).Select(l => l.Trim()).ToArray();
            }
            Assert.Matches(@"^\w*pipe_read \(\[kernel\]\)$", frames[0]);
            var kernel = frames.TakeWhile(f => f.EndsWith("([kernel])", StringComparison.Ordinal)).Count();
            Assert.Contains("do_syscall_64 ([kernel])", frames.Take(kernel));
            Assert.Matches(@"^(__libc_)?read \(libc\.so\.6\)$", frames[kernel]);
            Assert.DoesNotContain(frames.Skip(kernel), f => f.EndsWith("([kernel])", StringComparison.Ordinal));
            Assert.Equal("wait_for_data (<string>:6)", frames.First(f => f.Contains(":6)", StringComparison.Ordinal)));

            using var json = JsonDocument.Parse(PyprobeBinary.Run(["dump", "--kernel", "-f", "json", "-p", pid], timeout: TimeSpan.FromSeconds(30)).Stdout);
            var first = json.RootElement.GetProperty("threads")[0].GetProperty("frames")[0];
            Assert.Matches("pipe_read$", first.GetProperty("funcname").GetString());
            Assert.Equal("[kernel]", first.GetProperty("filename").GetString());
            Assert.True(first.GetProperty("native").GetBoolean());

            var plain = PyprobeBinary.Run(["dump", "--native", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.DoesNotContain("([kernel])", plain.Stdout);
        }
        finally
        {
            python.Kill();
        }
    }

    private static string? FirstLine(Process process, TimeSpan timeout)
    {
        var line = process.StandardOutput.ReadLineAsync();
        return line.Wait(timeout) ? line.Result : null;
    }
}
