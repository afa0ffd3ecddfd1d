using System.Diagnostics;
using System.Text.Json;

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
        var script = Path.Combine(Path.GetTempPath(), $"pyprobe-dump-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, Script);
        var start = new ProcessStartInfo(Python(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        using var target = Process.Start(start)!;
        try
        {
            var ready = FirstLine(target, TimeSpan.FromSeconds(30));
            Assert.True(ready is not null, "the script did not start");
            var tids = ready.Split(' ').Select(int.Parse).ToArray();
            Thread.Sleep(100);
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
            Assert.Equal([$"    park ({script}:6)", "        seconds = 3600", "        label = 'download'"], parked[..3]);
            var localsJson = PyprobeBinary.Run(["dump", "-p", pid, "--locals", "-f", "json"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(localsJson.ExitCode == 0, localsJson.ToString());
            using var withLocalsDocument = JsonDocument.Parse(localsJson.Stdout);
            var parkFrame = withLocalsDocument.RootElement.GetProperty("threads").EnumerateArray().Single(t => t.GetProperty("tid").GetInt32() == tids[1]).GetProperty("frames")[0];
            Assert.Equal([("seconds", "3600"), ("label", "'download'")],
                parkFrame.GetProperty("locals").EnumerateArray().Select(v => (v.GetProperty("name").GetString(), v.GetProperty("value").GetString())));
            Assert.False(target.HasExited);
        }
        finally
        {
            target.Kill();
            target.WaitForExit();
            File.Delete(script);
        }
    }

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
