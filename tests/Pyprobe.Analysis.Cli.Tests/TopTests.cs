using System.Diagnostics;
using Pyprobe.Cli.Tests;

namespace Pyprobe.Analysis.Cli.Tests;

/// <summary>
/// `pyprobe top` in a real pseudo-terminal (tmux): the screen shows the hot functions, and after top ends (target
/// exit, Ctrl-C, SIGTERM) the alternate screen is left, the cursor is visible and the text from before is back.
/// Without a terminal it prints plain periodic reports.
/// </summary>
public class TopTests
{
    private const string HotScript =
        "import sys, time\n" +
        "def hot_leaf(x):\n    return x * 2\n" +
        "def hot_loop():\n    s = 0\n    for i in range(2000):\n        s += hot_leaf(i)\n    return s\n" +
        "end = time.time() + float(sys.argv[1])\n" +
        "while time.time() < end:\n    hot_loop()\n    time.sleep(0.001)\n";

    [Fact]
    public void LiveViewShowsHotFunctionsAndRestoresTheTerminalWhenTheTargetExits()
    {
        using var tmux = new Tmux();
        using var script = HotFile();
        var python = CachedPythons.Get("3.9");
        tmux.Type($"echo BEFORE-TOP-MARKER; {PyprobeBinary.Path} top -- {string.Join(' ', python.Command(script.Path, "4"))}; echo TOP-EXIT=$?");
        var screen = tmux.WaitForScreen(s => s.Contains("hot_leaf") && s.Contains("hot_loop"), TimeSpan.FromSeconds(15));
        Assert.Equal("1", tmux.Display("#{alternate_on}"));
        Assert.Contains("pyprobe top", screen);
        Assert.Matches(@"%OWN\s+OWN\s+TOTAL\s+CALLS\s+MEAN\s+MAX\s+FUNCTION", screen);
        Assert.Contains($"hot_leaf ({script.Path}:2)", screen);
        var after = tmux.WaitForScreen(s => System.Text.RegularExpressions.Regex.IsMatch(s, @"TOP-EXIT=\d"), TimeSpan.FromSeconds(20));
        AssertRestored(tmux, after);
        Assert.Contains("TOP-EXIT=0", after);
    }

    [Theory]
    [InlineData("C-c")]
    [InlineData("TERM")]
    public void CtrlCAndSigtermRestoreTheTerminal(string how)
    {
        using var tmux = new Tmux();
        using var script = HotFile();
        var python = CachedPythons.Get("3.9");
        var command = python.Command(script.Path, "60");
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        using var target = Process.Start(info)!;
        try
        {
            Thread.Sleep(300);
            tmux.Type($"echo BEFORE-TOP-MARKER; {PyprobeBinary.Path} top --interval 0.5 -p {target.Id}; echo TOP-EXIT=$?");
            tmux.WaitForScreen(s => s.Contains("hot_leaf"), TimeSpan.FromSeconds(15));
            Assert.Equal("1", tmux.Display("#{alternate_on}"));
            if (how == "C-c") tmux.Keys("C-c");
            else Process.Start("kill", ["-TERM", tmux.ChildOfShell().ToString()])!.WaitForExit();
            var after = tmux.WaitForScreen(s => System.Text.RegularExpressions.Regex.IsMatch(s, @"TOP-EXIT=\d"), TimeSpan.FromSeconds(15));
            AssertRestored(tmux, after);
            Assert.Contains("TOP-EXIT=0", after);
            Assert.Contains("Detached after", after);
            Assert.False(target.HasExited, "the traced process must keep running after top detaches");
        }
        finally
        {
            target.Kill();
            target.WaitForExit();
        }
    }

    [Fact]
    public void WithoutATerminalPrintsPlainPeriodicText()
    {
        using var script = HotFile();
        var python = CachedPythons.Get("3.9");
        var result = PyprobeBinary.Run(["top", "--interval", "0.5", "--", .. python.Command(script.Path, "2.2")], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain('\u001b', result.Stdout);
        var headings = result.StdoutLines.Where(l => l.Contains(" pyprobe top pid ")).ToList();
        Assert.InRange(headings.Count, 4, 6);
        Assert.Contains(result.StdoutLines, l => l.Contains("CALLS") && l.Contains("SELF") && l.EndsWith("FUNCTION"));
        Assert.Contains(result.StdoutLines, l => l.EndsWith($"hot_leaf ({script.Path}:2)"));
        Assert.Contains(result.StdoutLines, l => l.EndsWith($"hot_loop ({script.Path}:4)"));
    }

    [Fact]
    public void CountsAloneLiveViewShowsCallsAndCallsPerSecond()
    {
        using var tmux = new Tmux();
        using var script = HotFile();
        var python = CachedPythons.Get("3.9");
        tmux.Type($"echo BEFORE-TOP-MARKER; {PyprobeBinary.Path} top --count -- {string.Join(' ', python.Command(script.Path, "4"))}; echo TOP-EXIT=$?");
        var screen = tmux.WaitForScreen(s => s.Contains("hot_leaf") && s.Contains("hot_loop"), TimeSpan.FromSeconds(15));
        Assert.Matches(@"CALLS\s+CALLS/S\s+FUNCTION", screen);
        Assert.DoesNotContain("%OWN", screen);
        // Counted at the return (USDT): no first line.
        Assert.Matches($@"\d+\s+\d+\s+hot_leaf \({System.Text.RegularExpressions.Regex.Escape(script.Path)}\)", screen);
        var after = tmux.WaitForScreen(s => System.Text.RegularExpressions.Regex.IsMatch(s, @"TOP-EXIT=\d"), TimeSpan.FromSeconds(20));
        AssertRestored(tmux, after);
        Assert.Contains("TOP-EXIT=0", after);
    }

    /// <summary>Plain reports of counts alone, every call in exactly one of them (an interval is what each count grew by).</summary>
    [Fact]
    public void CountsAloneWithoutATerminalAddUpToEveryCall()
    {
        var script = TickLoop.Script(2.2, pause: null);
        var python = CachedPythons.Get("3.9");
        var result = PyprobeBinary.Run(["top", "--count", "--interval", "0.5", "--", .. python.Command("-c", script)], timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.InRange(result.StdoutLines.Count(l => l.Contains(" pyprobe top pid ")), 4, 6);
        Assert.Contains(result.StdoutLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s*CALLS  FUNCTION$"));
        Assert.DoesNotContain(result.StdoutLines, l => l.Contains("SELF"));
        var ticks = long.Parse(Assert.Single(result.StdoutLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\d+$")));
        var counted = result.StdoutLines.Where(l => l.EndsWith("  tick (<string>)", StringComparison.Ordinal))
            .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]));
        Assert.Equal(ticks, counted);
    }

    [Fact]
    public void StatInATerminalShowsTheProcessAndLeavesTheTerminalUsable()
    {
        using var tmux = new Tmux();
        using var script = HotFile();
        var python = CachedPythons.Get("3.9");
        var command = python.Command(script.Path, "60");
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        using var target = Process.Start(info)!;
        try
        {
            Thread.Sleep(300);
            tmux.Type($"echo BEFORE-STAT-MARKER; {PyprobeBinary.Path} stat --interval 0.5 -p {target.Id}; echo STAT-EXIT=$?");
            var screen = tmux.WaitForScreen(s => System.Text.RegularExpressions.Regex.IsMatch(s, $@"\b{target.Id}\s+3\.9\.2\s+\d+\.\d"), TimeSpan.FromSeconds(15));
            Assert.Matches(@"PID\s+VERSION\s+CALLS/s\s+GC/s\s+IMPORTS/s\s+AUDIT/s\s+COMMAND", screen);
            tmux.Keys("C-c");
            var after = tmux.WaitForScreen(s => System.Text.RegularExpressions.Regex.IsMatch(s, @"STAT-EXIT=\d"), TimeSpan.FromSeconds(15));
            Assert.Contains("STAT-EXIT=0", after);
            Assert.Equal("0", tmux.Display("#{alternate_on}"));
            Assert.Equal("1", tmux.Display("#{cursor_flag}"));
            Assert.Contains("BEFORE-STAT-MARKER", after);
            Assert.False(target.HasExited, "the traced process must keep running after stat stops");
        }
        finally
        {
            target.Kill();
        }
    }

    private static void AssertRestored(Tmux tmux, string screen)
    {
        Assert.Equal("0", tmux.Display("#{alternate_on}"));
        Assert.Equal("1", tmux.Display("#{cursor_flag}"));
        // The normal screen is back: the text from before top is visible again, and top's table is not.
        Assert.Matches(new System.Text.RegularExpressions.Regex("^BEFORE-TOP-MARKER$", System.Text.RegularExpressions.RegexOptions.Multiline), screen);
        Assert.DoesNotContain("%OWN", screen);
    }

    private static TempFile HotFile()
    {
        var file = new TempFile();
        File.WriteAllText(file.Path, HotScript);
        return file;
    }

    /// <summary>
    /// A detached tmux session with a plain shell, 160x40, on a server of its own (a socket in the temp directory): a session killed
    /// by the test before makes the shared default server exit, and a new session that reaches it while it exits
    /// fails ("server exited unexpectedly"). The server is killed on dispose.
    /// </summary>
    private sealed class Tmux : IDisposable
    {
        private readonly string _name = $"pyprobe-top-{Guid.NewGuid():N}";
        private readonly string _socket = Path.Combine(Path.GetTempPath(), $"pyprobe-tmux-{Guid.NewGuid():N}");

        public Tmux()
        {
            Run("new-session", "-d", "-s", _name, "-x", "160", "-y", "40", "bash --norc --noprofile");
            Run("set-option", "-t", _name, "remain-on-exit", "on");
        }

        public void Type(string line)
        {
            Run("send-keys", "-t", _name, "-l", line);
            Run("send-keys", "-t", _name, "Enter");
        }

        public void Keys(string keys) => Run("send-keys", "-t", _name, keys);

        public string Display(string format) => Run("display-message", "-p", "-t", _name, format).Trim();

        public string Capture() => Run("capture-pane", "-p", "-t", _name);

        /// <summary>The pid of the command the pane's shell runs (pyprobe).</summary>
        public int ChildOfShell()
        {
            var shell = Display("#{pane_pid}");
            var children = File.ReadAllText($"/proc/{shell}/task/{shell}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(Assert.Single(children));
        }

        public string WaitForScreen(Func<string, bool> done, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            string screen;
            do
            {
                screen = Capture();
                if (done(screen)) return screen;
                Thread.Sleep(200);
            }
            while (DateTime.UtcNow < deadline);
            Assert.Fail($"the screen did not show what was expected in {timeout.TotalSeconds} s:\n{screen}");
            return screen;
        }

        private string Run(params string[] args)
        {
            var info = new ProcessStartInfo("tmux") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add("-S");
            info.ArgumentList.Add(_socket);
            foreach (var a in args) info.ArgumentList.Add(a);
            using var process = Process.Start(info) ?? throw new InvalidOperationException("cannot start tmux (scripts/install-prerequisites.sh installs it)");
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"tmux {string.Join(' ', args)}: {error}");
            return output;
        }

        public void Dispose()
        {
            try { Run("kill-server"); }
            catch (Exception) { }
            File.Delete(_socket);
        }
    }
}
