using System.Diagnostics;

namespace Pyprobe.Faults.Tests.Support;

/// <summary>
/// A real CPython process running a script that says "ready" and waits for a line on stdin before its
/// measured part, says "finished" after it, and waits for another line before exiting; so a test can
/// attach, release it, and look at the process after detach. Lines the script prints in its measured
/// part are kept in <see cref="Output"/>.
/// </summary>
public sealed class PythonWorkload : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stderr;

    /// <param name="command">The interpreter command line (e.g. <see cref="CachedPython.Command"/>); "-c SCRIPT" is appended.</param>
    /// <param name="setup">Code run before "ready" (imports, definitions).</param>
    /// <param name="measured">Code run between "go" and "finished".</param>
    public PythonWorkload(IReadOnlyList<string> command, string setup, string measured)
    {
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1)) info.ArgumentList.Add(arg);
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Script(setup, measured));
        _process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {command[0]}");
        _stderr = _process.StandardError.ReadToEndAsync();
        var first = ReadLine(TimeSpan.FromSeconds(30));
        while (first is not null && first != "ready")
        {
            Preamble.Add(first);
            first = ReadLine(TimeSpan.FromSeconds(30));
        }
        if (first != "ready")
        {
            Kill();
            throw new InvalidOperationException($"{string.Join(' ', command)} did not start: {first} {_stderr.Result}");
        }
    }

    public static string Script(string setup, string measured) =>
        "import sys\n" + setup + "\nsys.stdout.write('ready\\n'); sys.stdout.flush()\nsys.stdin.readline()\n" + measured +
        "\nsys.stdout.write('finished\\n'); sys.stdout.flush()\nsys.stdin.readline()\n";

    /// <summary>The process that was started (for a namespace wrapper, the wrapper).</summary>
    public int Pid => _process.Id;

    /// <summary>Lines printed before "ready".</summary>
    public List<string> Preamble { get; } = [];

    /// <summary>Lines printed by the measured part.</summary>
    public List<string> Output { get; } = [];

    public bool HasExited => _process.HasExited;

    /// <summary>Lets the script run its measured part and waits until it has finished it.</summary>
    public void RunMeasuredPart(TimeSpan timeout)
    {
        Go();
        WaitFinished(timeout);
    }

    /// <summary>Sends one line to the script (the first one releases its measured part).</summary>
    public void Go()
    {
        _process.StandardInput.WriteLine("go");
        _process.StandardInput.Flush();
    }

    public void WaitFinished(TimeSpan timeout) => WaitLine("finished", timeout);

    /// <summary>Reads the script's output until the line <paramref name="expected"/>; the lines before it go to <see cref="Output"/>.</summary>
    public void WaitLine(string expected, TimeSpan timeout)
    {
        while (true)
        {
            var line = ReadLine(timeout);
            if (line == expected) return;
            if (line is null) throw new InvalidOperationException($"workload ended before finishing: {(_process.WaitForExit(5000) ? _stderr.Result : "")}");
            Output.Add(line);
        }
    }

    /// <summary>Lets the script exit and waits for it.</summary>
    public void Exit(TimeSpan timeout)
    {
        _process.StandardInput.WriteLine("exit");
        _process.StandardInput.Flush();
        if (!_process.WaitForExit(timeout)) throw new TimeoutException("workload did not exit");
    }

    private string? ReadLine(TimeSpan timeout)
    {
        var task = _process.StandardOutput.ReadLineAsync();
        return task.Wait(timeout) ? task.Result : throw new TimeoutException($"workload said nothing for {timeout.TotalSeconds} s");
    }

    public void Kill()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                // Two lines: one releases a measured part not yet run, the other the wait after it.
                _process.StandardInput.WriteLine("exit");
                _process.StandardInput.WriteLine("exit");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(5000)) Kill();
            }
        }
        catch (IOException)
        {
            Kill();
        }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
