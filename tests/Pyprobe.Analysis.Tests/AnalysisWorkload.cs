using System.Diagnostics;

namespace Pyprobe.Analysis.Tests;

/// <summary>
/// A real CPython process running a script that waits for "go" on stdin before its measured part
/// and for another line before exiting, so a test can attach, release it, and check after detach.
/// </summary>
internal sealed class AnalysisWorkload : IDisposable
{
    private readonly Process _process;

    public AnalysisWorkload(string interpreter, string script, params string[] launcherPrefix)
    {
        var info = new ProcessStartInfo(launcherPrefix.Length > 0 ? launcherPrefix[0] : interpreter)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in launcherPrefix.Skip(1)) info.ArgumentList.Add(arg);
        if (launcherPrefix.Length > 0) info.ArgumentList.Add(interpreter);
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("import sys\nsys.stdout.write('ready\\n'); sys.stdout.flush()\nsys.stdin.readline()\n" + script + "\nsys.stdout.write('finished\\n'); sys.stdout.flush()\nsys.stdin.readline()\n");
        _process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {interpreter}");
        var first = _process.StandardOutput.ReadLine();
        if (first != "ready") throw new InvalidOperationException($"{interpreter} did not start: {first} {_process.StandardError.ReadToEnd()}");
    }

    public int Pid => _process.Id;

    /// <summary>Lets the script run its measured part and waits until it has finished it.</summary>
    public void RunMeasuredPart(TimeSpan timeout)
    {
        _process.StandardInput.WriteLine("go");
        _process.StandardInput.Flush();
        var line = ReadLineWithin(timeout);
        if (line != "finished") throw new InvalidOperationException($"workload said '{line}': {_process.StandardError.ReadToEnd()}");
    }

    private string? ReadLineWithin(TimeSpan timeout)
    {
        var task = _process.StandardOutput.ReadLineAsync();
        return task.Wait(timeout) ? task.Result : throw new TimeoutException("workload did not finish in time");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("exit");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(5000)) _process.Kill();
            }
        }
        catch (IOException)
        {
            _process.Kill();
        }
        _process.Dispose();
    }
}
