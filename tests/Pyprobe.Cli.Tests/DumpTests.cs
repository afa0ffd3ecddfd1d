using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `pyprobe dump -p PID` through dist/pyprobe, text and JSON: a process whose renamed main thread waits on an Event in
/// wait_here() and whose worker (a name longer than the kernel's 15 bytes) sleeps in park(). Each thread under the name
/// Python gave it, its own frames innermost first at their exact lines, with --locals park()'s two arguments; the
/// process left running.
/// </summary>
public sealed class DumpTests
{
    private const string Script = """
        import threading, time
        ev = threading.Event()
        def wait_here():
            ev.wait()
        def park(seconds=3600, label="download"):
            time.sleep(seconds)
        threading.current_thread().name = "main loop"
        t = threading.Thread(target=park, name="download-worker-with-a-long-name", daemon=True)
        t.start()
        time.sleep(0.1)
        print(threading.get_native_id(), t.native_id, flush=True)
        wait_here()
        """;

    [Theory]
    [InlineData("pyenv:3.8.18")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.11")]
    [InlineData("debian:3.14")]
    public void EachThreadIsShownUnderItsPythonNameWithItsFrames(string interpreter)
    {
        var (target, script, tids) = StartScript(interpreter, Script);
        try
        {
            var pid = target.Id.ToString();

            var text = PyprobeBinary.Run(["dump", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(text.ExitCode == 0, text.ToString());
            var lines = text.Stdout.Split('\n');
            Assert.Matches($@"^Process {pid}: Python 3\.\d+\.\d+$", lines[0]);
            // Both wait, asleep, without the GIL.
            Assert.Contains($"Thread {tids[0]} (main loop) (idle)", lines);
            Assert.Contains($"Thread {tids[1]} (download-worker-with-a-long-name) (idle)", lines);
            var main = Block(lines, $"Thread {tids[0]} (main loop)");
            Assert.Equal([$"    wait_here ({script}:4)", $"    <module> ({script}:12)"], main[^2..]);
            Assert.Matches(@"^    (Event\.)?wait \(.*threading\.py:\d+\)$", main[^3]);
            var worker = Block(lines, $"Thread {tids[1]} (download-worker-with-a-long-name)");
            Assert.Equal($"    park ({script}:6)", worker[0]);
            Assert.Matches(@"^    (Thread\.)?_bootstrap \(.*threading\.py:\d+\)$", worker[^1]);
            Assert.Equal(2, lines.Count(l => l.StartsWith("Thread ", StringComparison.Ordinal)));

            var json = PyprobeBinary.Run(["dump", "-p", pid, "-f", "json"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(json.ExitCode == 0, json.ToString());
            using var document = JsonDocument.Parse(json.Stdout);
            var threads = document.RootElement.GetProperty("threads").EnumerateArray()
                .ToDictionary(t => t.GetProperty("tid").GetInt32(), t => (Name: t.GetProperty("name").GetString(), Frames: t.GetProperty("frames")));
            Assert.Equal(tids.Order(), threads.Keys.Order());
            Assert.Equal("main loop", threads[tids[0]].Name);
            Assert.All(document.RootElement.GetProperty("threads").EnumerateArray(), t => Assert.False(t.GetProperty("running").GetBoolean()));
            Assert.Equal("download-worker-with-a-long-name", threads[tids[1]].Name);
            var first = threads[tids[1]].Frames[0];
            Assert.Equal(("park", script, 6), (first.GetProperty("funcname").GetString(), first.GetProperty("filename").GetString(), first.GetProperty("lineno").GetInt32()));
            Assert.False(first.TryGetProperty("locals", out _));

            var withLocals = PyprobeBinary.Run(["dump", "-p", pid, "--locals"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(withLocals.ExitCode == 0, withLocals.ToString());
            var parked = Block(withLocals.Stdout.Split('\n'), $"Thread {tids[1]} (download-worker-with-a-long-name)");
            Assert.Equal([$"    park ({script}:6)", "        Arguments:", "            seconds = 3600", "            label = 'download'"], parked[..4]);
            var localsJson = PyprobeBinary.Run(["dump", "-p", pid, "--locals", "-f", "json"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(localsJson.ExitCode == 0, localsJson.ToString());
            // Escaped only where JSON needs it, as pyprobe's other JSON: a repr's quotes and brackets stay as they are.
            Assert.Contains("\"value\":\"'download'\"", localsJson.Stdout);
            using var withLocalsDocument = JsonDocument.Parse(localsJson.Stdout);
            var parkFrame = withLocalsDocument.RootElement.GetProperty("threads").EnumerateArray().Single(t => t.GetProperty("tid").GetInt32() == tids[1]).GetProperty("frames")[0];
            Assert.Equal([("seconds", "3600", true), ("label", "'download'", true)],
                parkFrame.GetProperty("locals").EnumerateArray().Select(v => (v.GetProperty("name").GetString(), v.GetProperty("value").GetString(), v.GetProperty("arg").GetBoolean())));
            Assert.False(target.HasExited);
        }
        finally
        {
            target.Kill();
            target.WaitForExit();
            target.Dispose();
            File.Delete(script);
        }
    }

    private const string NativeScript = """
        import sys, threading, time
        ev = threading.Event()
        def wait_here():
            ev.wait()
        def park(seconds=3600, label="download"):
            time.sleep(seconds)
        def listen():
            sys.stdin.readline()
            ev.set()
        threading.current_thread().name = "main loop"
        t = threading.Thread(target=park, name="download-worker-with-a-long-name", daemon=True)
        t.start()
        threading.Thread(target=listen, name="listener", daemon=True).start()
        time.sleep(0.1)
        print(threading.get_native_id(), t.native_id, flush=True)
        wait_here()
        print("woke", flush=True)
        """;

    /// <summary>
    /// dump --native on every kind of frame chain (3.8–3.10 a C call per Python call, 3.11 is_entry, 3.12+ shim frames):
    /// each thread's stack starts with the C code it waits in (libc's system call wrapper, innermost), then its Python
    /// frames exactly as dump without --native gives them, with none of the interpreter's C frames between them (no
    /// extension calls back into Python here) and none outside the outermost. The process was held and let go: nothing
    /// traces it afterwards, its threads sleep again, and it still answers (a line on stdin wakes the main thread).
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.8.18")]
    [InlineData("pyenv:3.10.13")]
    [InlineData("debian:3.11")]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.13")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.15")]
    public void NativeFramesAreTheCCodeEachThreadWaitsInUnderItsPythonFrames(string interpreter)
    {
        var (target, script, tids) = StartScript(interpreter, NativeScript);
        try
        {
            var pid = target.Id.ToString();

            var plain = PyprobeBinary.Run(["dump", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(plain.ExitCode == 0, plain.ToString());
            var native = PyprobeBinary.Run(["dump", "--native", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(native.ExitCode == 0, native.ToString());
            var lines = native.Stdout.Split('\n');
            Assert.Matches($@"^Process {pid}: Python 3\.\d+\.\d+ \(held still \d+\.\d ms to read its native stacks\)$", lines[0]);
            // Held, the threads show 't'; what is printed is what they did before: asleep.
            Assert.Contains($"Thread {tids[0]} (main loop) (idle)", lines);
            foreach (var (tid, name) in new[] { (tids[0], "main loop"), (tids[1], "download-worker-with-a-long-name") })
            {
                var mixed = Block(lines, $"Thread {tid} ({name})");
                var python = Block(plain.Stdout.Split('\n'), $"Thread {tid} ({name})");
                static bool IsNative(string line) => !Regex.IsMatch(line, @":\d+\)$");
                var firstPython = Array.FindIndex(mixed, l => !IsNative(l));
                Assert.True(firstPython > 0, $"no C frame inside the Python frames of thread {tid}:\n{native.Stdout}");
                Assert.Matches(@"^    \S+ \(libc\.so\.6\)$", mixed[0]);
                Assert.Equal(python, mixed[firstPython..]);
            }
            // The worker sleeps in libc's clock_nanosleep (3.8: select), under which newer glibcs (the Debian builds' own)
            // go through static helpers, named by their offset in the stripped file.
            var worker = Block(lines, $"Thread {tids[1]} (download-worker-with-a-long-name)");
            Assert.Contains(worker.TakeWhile(l => !l.StartsWith("    park (", StringComparison.Ordinal)),
                l => Regex.IsMatch(l, @"^    (clock_nanosleep|select|__select) \(libc\.so\.6\)$"));

            // With --locals too, each Python frame keeps its own variables under it, the C frames have none.
            var withLocals = PyprobeBinary.Run(["dump", "--native", "--locals", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(withLocals.ExitCode == 0, withLocals.ToString());
            var parked = withLocals.Stdout.Split('\n').SkipWhile(l => l != $"Thread {tids[1]} (download-worker-with-a-long-name) (idle)").ToList();
            var at = parked.IndexOf($"    park ({script}:6)");
            Assert.True(at > 1, withLocals.Stdout);
            Assert.Equal(["        Arguments:", "            seconds = 3600", "            label = 'download'"], parked[(at + 1)..(at + 4)]);
            Assert.Matches(@"^    (Thread\.)?run \(", parked[at + 4]);
            Assert.DoesNotContain(parked[1..at], l => l.StartsWith("        ", StringComparison.Ordinal));

            var json = PyprobeBinary.Run(["dump", "--native", "-p", pid, "-f", "json"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(json.ExitCode == 0, json.ToString());
            using var document = JsonDocument.Parse(json.Stdout);
            Assert.True(document.RootElement.GetProperty("paused_ms").GetDouble() > 0);
            var frames = document.RootElement.GetProperty("threads").EnumerateArray().Single(t => t.GetProperty("tid").GetInt32() == tids[1]).GetProperty("frames");
            Assert.True(frames[0].GetProperty("native").GetBoolean());
            Assert.Equal("libc.so.6", frames[0].GetProperty("filename").GetString());
            var park = frames.EnumerateArray().First(f => !f.TryGetProperty("native", out _));
            Assert.Equal(("park", script, 6), (park.GetProperty("funcname").GetString(), park.GetProperty("filename").GetString(), park.GetProperty("lineno").GetInt32()));

            // Let go: traced by nothing, asleep again, and answering.
            foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
                Assert.Equal(0, Status(int.Parse(Path.GetFileName(task)), "TracerPid:"));
            target.StandardInput.WriteLine("go");
            target.StandardInput.Flush();
            Assert.Equal("woke", FirstLine(target, TimeSpan.FromSeconds(10)));
            Assert.True(target.WaitForExit(10_000));
            Assert.Equal(0, target.ExitCode);
        }
        finally
        {
            if (!target.HasExited) target.Kill();
            target.WaitForExit();
            target.Dispose();
            File.Delete(script);
        }
    }

    /// <summary>
    /// dump --native shows a thread Python does not know (pthread_create on a spinning C function) after the Python ones, by
    /// its C frames alone: the spinning function innermost, libc's thread start outside it. Without --native it is not shown.
    /// </summary>
    [Theory]
    [InlineData("pyenv:3.10.13")]
    [InlineData("pyenv:3.12.1")]
    public void NativeShowsAThreadPythonDoesNotKnowByItsCFrames(string interpreter)
    {
        using var workload = new CThreadWorkload(Python(interpreter));
        var pid = workload.Process.Id.ToString();
        var native = PyprobeBinary.Run(["dump", "--native", "-p", pid], timeout: TimeSpan.FromSeconds(30));
        Assert.True(native.ExitCode == 0, native.ToString());
        var lines = native.Stdout.Split('\n');
        var header = Assert.Single(lines, l => l.StartsWith($"Thread {workload.CThreadTid} (", StringComparison.Ordinal));
        Assert.EndsWith(" (running), C code only: not a Python thread", header);
        Assert.Equal(header, lines.Last(l => l.StartsWith("Thread ", StringComparison.Ordinal)));
        var frames = Block(lines, header);
        Assert.Equal($"    spin_forever ({workload.LibraryName})", frames[0]);
        Assert.All(frames, f => Assert.Matches(@"^    \S+ \([^:]+\)$", f));
        Assert.Contains(frames, f => f.EndsWith(" (libc.so.6)", StringComparison.Ordinal));

        using var json = JsonDocument.Parse(PyprobeBinary.Run(["dump", "--native", "-f", "json", "-p", pid], timeout: TimeSpan.FromSeconds(30)).Stdout);
        var cThread = json.RootElement.GetProperty("threads").EnumerateArray().Single(t => t.GetProperty("tid").GetInt32() == workload.CThreadTid);
        Assert.True(cThread.GetProperty("c_only").GetBoolean());
        Assert.Equal("spin_forever", cThread.GetProperty("frames")[0].GetProperty("funcname").GetString());
        Assert.All(json.RootElement.GetProperty("threads").EnumerateArray().Where(t => t.GetProperty("tid").GetInt32() != workload.CThreadTid),
            t => Assert.False(t.TryGetProperty("c_only", out _)));

        var plain = PyprobeBinary.Run(["dump", "-p", pid], timeout: TimeSpan.FromSeconds(30));
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.DoesNotContain($"Thread {workload.CThreadTid} ", plain.Stdout);
    }

    /// <summary>A process strace holds is refused with one line naming strace; strace's hold is untouched.</summary>
    [Fact]
    public void NativeRefusesAProcessThatIsAlreadyTraced()
    {
        var start = new ProcessStartInfo(Python("debian:3.11")) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import time; print('ready', flush=True); time.sleep(3600)");
        using var target = Process.Start(start)!;
        using var strace = Process.Start(new ProcessStartInfo("strace", ["-q", "-o", "/dev/null", "-p", target.Id.ToString()]) { RedirectStandardError = true })!;
        try
        {
            Assert.Equal("ready", FirstLine(target, TimeSpan.FromSeconds(30)));
            var clock = Stopwatch.StartNew();
            while (Status(target.Id, "TracerPid:") == 0 && clock.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(10);
            Assert.Equal(strace.Id, Status(target.Id, "TracerPid:"));

            var result = PyprobeBinary.Run(["dump", "--native", "-p", target.Id.ToString()], timeout: TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, result.ExitCode);
            Assert.Equal($"pyprobe: process {target.Id} is already traced by process {strace.Id} (strace): it cannot be paused for its native stacks while that one holds it",
                result.Stderr.Trim());
            Assert.Equal("", result.Stdout);
            Assert.Equal(strace.Id, Status(target.Id, "TracerPid:"));
            Assert.False(strace.HasExited);
        }
        finally
        {
            strace.Kill();
            strace.WaitForExit();
            target.Kill();
            target.WaitForExit();
        }
    }

    /// <summary>Runs <paramref name="text"/> as a script; returns once it printed its threads' ids (main, worker) and they settled.</summary>
    private static (Process Target, string Script, int[] Tids) StartScript(string interpreter, string text)
    {
        var script = Path.Combine(Path.GetTempPath(), $"pyprobe-dump-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, text);
        var start = new ProcessStartInfo(Python(interpreter)) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        var target = Process.Start(start)!;
        var ready = FirstLine(target, TimeSpan.FromSeconds(30));
        Assert.True(ready is not null, "the script did not start");
        Thread.Sleep(100);
        return (target, script, ready.Split(' ').Select(int.Parse).ToArray());
    }

    private static int Status(int tid, string field) =>
        int.Parse(File.ReadLines($"/proc/{tid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim());

    /// <summary>The frame lines under the thread line that starts with <paramref name="header"/>, up to the blank line after them.</summary>
    private static string[] Block(string[] lines, string header)
    {
        var at = Array.FindIndex(lines, l => l.StartsWith(header + " ", StringComparison.Ordinal) || l == header);
        Assert.True(at >= 0, $"no line '{header}' in:\n{string.Join('\n', lines)}");
        return lines.Skip(at + 1).TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal)).ToArray();
    }

    private static string? FirstLine(Process process, TimeSpan timeout)
    {
        var line = process.StandardOutput.ReadLineAsync();
        return line.Wait(timeout) ? line.Result : null;
    }

    private static string Python(string interpreter) => CachedPythons.Executable(interpreter);
}
