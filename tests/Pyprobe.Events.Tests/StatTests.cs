using System.Diagnostics;
using System.Text.Json;

using Pyprobe.Cli.Tests;

namespace Pyprobe.Events.Tests;

/// <summary>pyprobe stat on the whole machine and on chosen processes.</summary>
public class StatTests
{
    private const string Loop = "import gc, sys, time\ndef f(): pass\nprint('ready', flush=True)\nwhile True:\n    for _ in range(1000): f()\n    sys.audit('pyprobe.loop')\n    gc.collect()\n    time.sleep(0.01)\n";

    private static Process StartLoop(CachedPython python, string tag)
    {
        var command = python.Command("-c", Loop, tag);
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        var p = Process.Start(info)!;
        Assert.Equal("ready", p.StandardOutput.ReadLine());
        return p;
    }

    [Fact]
    public void SystemWideRowsForTwoVersionsAndNoneForOtherProcesses()
    {
        var tag = $"pyprobe-stat-{Guid.NewGuid():N}";
        using var old = StartLoop(CachedPythons.Get("3.9"), tag);
        using var modern = StartLoop(CachedPythons.Get("3.13"), tag);
        using var sleeper = RunningProcess.Start("sleep", "60");
        try
        {
            var result = PyprobeBinary.Run(["stat", "--format", "json", "--interval", "1", "--duration", "2.2"], timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            var rows = result.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.DoesNotContain(rows, r => r.GetProperty("pid").GetInt32() == sleeper.Pid);
            Assert.DoesNotContain(rows, r => r.GetProperty("pid").GetInt32() == Environment.ProcessId);
            var first = rows.Where(r => r.GetProperty("pid").GetInt32() == old.Id).ToList();
            var second = rows.Where(r => r.GetProperty("pid").GetInt32() == modern.Id).ToList();
            Assert.True(first.Count >= 2, result.ToString());
            Assert.True(second.Count >= 2, result.ToString());
            foreach (var r in first.Take(2))
            {
                Assert.Equal("3.9.2", r.GetProperty("version").GetString());
                Assert.EndsWith(tag, r.GetProperty("command").GetString());
                Assert.True(r.GetProperty("calls_per_s").GetDouble() > 1000, r.GetRawText());
                Assert.True(r.GetProperty("gc_per_s").GetDouble() > 1, r.GetRawText());
                Assert.True(r.GetProperty("audit_per_s").GetDouble() > 1, r.GetRawText());
                Assert.Equal(r.GetProperty("gc").GetInt64(), r.GetProperty("audit").GetInt64());
            }
            foreach (var r in second.Take(2))
            {
                Assert.Equal("3.13.5", r.GetProperty("version").GetString());
                Assert.EndsWith(tag, r.GetProperty("command").GetString());
                Assert.Equal(JsonValueKind.Null, r.GetProperty("calls_per_s").ValueKind);
                Assert.True(r.GetProperty("gc_per_s").GetDouble() > 1, r.GetRawText());
                Assert.True(r.GetProperty("audit_per_s").GetDouble() > 1, r.GetRawText());
            }
            Assert.Contains("calls/s is n/a (removed in 3.12", result.Stderr);
        }
        finally
        {
            old.Kill();
            modern.Kill();
        }
    }

    [Fact]
    public void TextRowsForChosenProcess()
    {
        var tag = $"pyprobe-stat-{Guid.NewGuid():N}";
        using var loop = StartLoop(CachedPythons.Get("3.15"), tag);
        using var other = StartLoop(CachedPythons.Get("3.9"), tag);
        try
        {
            var result = PyprobeBinary.Run(["stat", "-p", loop.Id.ToString(), "--interval", "0.5", "--duration", "1.2"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            var rows = result.StdoutLines.Where(l => l.TrimStart().StartsWith(loop.Id + " ", StringComparison.Ordinal)).ToList();
            Assert.True(rows.Count >= 2, result.ToString());
            Assert.All(rows, r => Assert.Matches($@"^ *{loop.Id}  3\.15\.2 +[1-9][\d.]* +[1-9][\d.]* +[\d.]+ +[1-9][\d.]*  .*", r));
            Assert.DoesNotContain(result.StdoutLines, l => l.TrimStart().StartsWith(other.Id + " ", StringComparison.Ordinal));
            Assert.Contains("PID  VERSION", result.Stdout);
        }
        finally
        {
            loop.Kill();
            other.Kill();
        }
    }
}
