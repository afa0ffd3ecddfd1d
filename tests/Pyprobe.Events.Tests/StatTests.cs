using System.Diagnostics;
using System.Text.Json;

using Pyprobe.Cli.Tests;

namespace Pyprobe.Events.Tests;

/// <summary>pyprobe stat on the whole machine and on chosen processes.</summary>
public class StatTests
{
    private const string Loop = "import gc, sys, time\ndef f(): pass\nprint('ready', flush=True)\nwhile True:\n    for _ in range(1000): f()\n    sys.audit('pyprobe.loop')\n    gc.collect()\n    time.sleep(0.01)\n";

    private static Process StartLoop(CachedPython python, string tag) => StartLoop(python.Command("-c", Loop, tag));

    private static Process StartLoop(IReadOnlyList<string> command)
    {
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
        // A Python without probes: no row (nothing counts it machine-wide), one note that names it and says what does.
        const string pyenv = "/root/.pyenv/versions/3.12.1/bin/python3.12";
        if (!File.Exists(pyenv)) Assert.Fail($"{pyenv} is missing: the pyenv builds are part of this machine");
        using var unprobed = StartLoop([pyenv, "-c", Loop, tag]);
        try
        {
            var result = PyprobeBinary.Run(["stat", "--format", "json", "--interval", "1", "--duration", "2.2"], timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            var rows = result.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.DoesNotContain(rows, r => r.GetProperty("pid").GetInt32() == sleeper.Pid);
            Assert.DoesNotContain(rows, r => r.GetProperty("pid").GetInt32() == unprobed.Id);
            var note = $"pyprobe: note: pid {unprobed.Id} runs CPython 3.12.1 from /root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0, which has no USDT probes: " +
                $"nothing is counted for it machine-wide; 'pyprobe stat -p {unprobed.Id}' counts its calls through _PyEval_EvalFrameDefault";
            Assert.Single(result.Stderr.Split('\n'), l => l == note);
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
                // One audit event and one collection per loop: equal, except that a row's end may fall between the two
                // (CI saw 62 collections beside 63 audits).
                Assert.InRange(r.GetProperty("audit").GetInt64() - r.GetProperty("gc").GetInt64(), -1, 1);
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
            unprobed.Kill();
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
            // The first two rows cover whole 0.5 s intervals of a loop that calls, collects and audits every 10 ms; the
            // last covers what was left of --duration, which on a loaded machine can be a few ms with nothing in it.
            Assert.All(rows.Take(2), r => Assert.Matches($@"^ *{loop.Id}  3\.15\.2 +[1-9][\d.]* +[1-9][\d.]* +[\d.]+ +[1-9][\d.]*  .*", r));
            Assert.All(rows, r => Assert.Matches($@"^ *{loop.Id}  3\.15\.2 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+  .*", r));
            Assert.DoesNotContain(result.StdoutLines, l => l.TrimStart().StartsWith(other.Id + " ", StringComparison.Ordinal));
            Assert.Contains("PID  VERSION", result.Stdout);
        }
        finally
        {
            loop.Kill();
            other.Kill();
        }
    }

    /// <summary>fib(18) three times between two one-byte reads of stdin (os.read: no Python-level decoding, so fib is all the Python that runs).</summary>
    private const string FibLoop =
        "import os\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n" +
        "os.write(1, b'ready\\n')\nos.read(0, 1)\nfor _ in range(3):\n    fib(18)\nos.write(1, b'done\\n')\nos.read(0, 1)\n";

    /// <summary>
    /// stat -p on a pyenv 3.12 process (no USDT probes at all) and a Debian 3.14 one (gc/import/audit probes, no function
    /// probes; CET): pyprobe says it sets the eval-frame hook and counts every call through _PyEval_EvalFrameDefault —
    /// 3 × fib(18) = 25,083 calls, exactly, summed over the intervals.
    /// </summary>
    [Theory]
    [InlineData("3.12.1")]
    [InlineData("3.14")]
    public async Task ChosenProcessWithoutFunctionProbesCountsCallsThroughTheEvalFrameHook(string version)
    {
        using var python = StartPython(version, FibLoop);
        using var stat = Process.Start(Info(PyprobeBinary.Path, "stat", "-p", python.Id.ToString(), "--interval", "0.5", "--format", "json"))!;
        var stderr = new List<string>();
        string? line;
        while ((line = stat.StandardError.ReadLine()) is not null)
        {
            stderr.Add(line);
            if (line.StartsWith("Attached", StringComparison.Ordinal)) break;
        }
        Assert.True(line is not null, string.Join('\n', stderr));
        Assert.Contains(stderr, l => l.Contains("pyprobe writes 8 bytes into the process (interp->eval_frame", StringComparison.Ordinal));
        var rows = stat.StandardOutput.ReadToEndAsync();
        python.StandardInput.Write('g');
        python.StandardInput.Flush();
        Assert.Equal("done", python.StandardOutput.ReadLine());
        await Task.Delay(600); // the interval with the last call ends
        Process.Start("kill", ["-INT", stat.Id.ToString()])!.WaitForExit();
        Assert.True(stat.WaitForExit(TimeSpan.FromSeconds(30)), "pyprobe did not stop");
        Assert.Equal(0, stat.ExitCode);
        python.StandardInput.Write('x');
        python.StandardInput.Flush();

        var mine = (await rows).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).Where(r => r.GetProperty("pid").GetInt32() == python.Id).ToList();
        Assert.True(mine.Count >= 2, $"{mine.Count} rows");
        Assert.Equal(3 * 8361, mine.Sum(r => r.GetProperty("calls").GetInt64()));
        Assert.All(mine, r => Assert.StartsWith(version, r.GetProperty("version").GetString()));
    }

    /// <summary>With --no-write the hook is not set: calls/s stays n/a on 3.12, and stderr says why.</summary>
    [Fact]
    public void NoWriteKeepsCallsUncountedWhereTheHookIsNeeded()
    {
        using var python = StartPython("3.12.1", FibLoop);
        try
        {
            var result = PyprobeBinary.Run(["stat", "-p", python.Id.ToString(), "--no-write", "--interval", "0.3", "--duration", "0.7", "--format", "json"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("calls/s is n/a (CPython 3.12.1 inlines Python calls unless its eval-frame hook is set, and --no-write forbids setting it)", result.Stderr);
            Assert.DoesNotContain("writes 8 bytes", result.Stderr);
            var rows = result.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.NotEmpty(rows);
            Assert.All(rows, r => Assert.Equal(JsonValueKind.Null, r.GetProperty("calls").ValueKind));
        }
        finally
        {
            python.Kill();
        }
    }

    /// <summary>A three-part version is a pyenv build, a two-part one a Debian build from the interpreter cache.</summary>
    private static Process StartPython(string version, string script)
    {
        List<string> command;
        if (version.Split('.').Length == 2) command = CachedPythons.Get(version).Command("-c", script);
        else
        {
            var binary = $"/root/.pyenv/versions/{version}/bin/python{string.Join('.', version.Split('.').Take(2))}";
            if (!File.Exists(binary)) Assert.Fail($"{binary} is missing: install CPython {version} with pyenv");
            command = [binary, "-c", script];
        }
        var process = Process.Start(Info(command[0], [.. command.Skip(1)]))!;
        Assert.Equal("ready", process.StandardOutput.ReadLine());
        return process;
    }

    private static ProcessStartInfo Info(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }
}
