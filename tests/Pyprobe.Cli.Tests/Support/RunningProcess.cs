using System.Diagnostics;

namespace Pyprobe.Cli.Tests;

/// <summary>A child process that lives until disposed (then it is killed).</summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;

    private RunningProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    /// <summary>
    /// Starts <paramref name="interpreter"/> (a launcher or a python binary) sleeping for 60 s and
    /// waits until the interpreter has started, so its files are mapped.
    /// </summary>
    public static RunningProcess Python(string interpreter)
    {
        var info = new ProcessStartInfo(interpreter) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("import sys, time; print('ready', flush=True); time.sleep(60)");
        var p = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {interpreter}");
        var ready = p.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(30)) || ready.Result != "ready")
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            Assert.Fail($"{interpreter} did not start: {(ready.IsCompleted ? ready.Result : "timeout")} {p.StandardError.ReadToEnd()}");
        }
        return new RunningProcess(p);
    }

    /// <summary>Any other program, e.g. sleep 60; waits until it has exec'd.</summary>
    public static RunningProcess Start(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        var p = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !ExecDone(p.Id, program)) Thread.Sleep(20);
        return new RunningProcess(p);
    }

    /// <summary>A Python script run by <paramref name="interpreter"/> (a binary or a launcher script); waits until the interpreter is mapped.</summary>
    public static RunningProcess PythonScript(string interpreter, params string[] args)
    {
        var info = new ProcessStartInfo(interpreter) { UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        var p = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {interpreter}");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !MapsPython(p.Id)) Thread.Sleep(20);
        return new RunningProcess(p);
    }

    private static bool MapsPython(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/maps").Contains("python3", StringComparison.Ordinal); }
        catch (IOException) { return false; }
    }

    private static bool ExecDone(int pid, string program)
    {
        try { return Path.GetFileName(new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "") == Path.GetFileName(program); }
        catch (IOException) { return false; }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
