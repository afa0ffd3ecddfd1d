using System.Diagnostics;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>The interpreters on the machine the runtime model is checked against; a missing one fails the test.</summary>
internal static class Interpreters
{
    public const string PyenvRoot = "/root/.pyenv/versions";

    public static string PyenvHome(string full)
    {
        var home = Path.Combine(PyenvRoot, full);
        if (!Directory.Exists(home)) Assert.Fail($"{home} is missing: install CPython {full} with pyenv");
        return home;
    }

    public static string Minor(string full) => string.Join('.', full.Split('.').Take(2));

    public static string PyenvLibPython(string full) => Path.Combine(PyenvHome(full), "lib", $"libpython{Minor(full)}.so.1.0");

    /// <summary>The command line that runs an interpreter: "pyenv:3.12.1" or "debian:3.13".</summary>
    public static List<string> Command(string id)
    {
        var (kind, v) = (id.Split(':')[0], id.Split(':')[1]);
        if (kind == "pyenv") return [Path.Combine(PyenvHome(v), "bin", $"python{Minor(v)}")];
        var cached = CachedPythons.Get(v);
        Requirements.EnsureFile(cached.Binary);
        return cached.DirectCommand();
    }

    /// <summary>Runs a command to completion and returns its standard output; a failure fails the test.</summary>
    public static string Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) Assert.Fail($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}");
        return stdout.Result;
    }
}

/// <summary>
/// A Python process running a script that prints one line once it is parked (threads started and
/// waiting in known places), then stays until disposed.
/// </summary>
internal sealed class ParkedPython : IDisposable
{
    private readonly Process _process;

    public ParkedPython(string interpreterId, string script)
    {
        ScriptPath = Path.Combine(Path.GetTempPath(), $"pyprobe-parked-{Guid.NewGuid():N}.py");
        File.WriteAllText(ScriptPath, script);
        var command = Interpreters.Command(interpreterId);
        var info = new ProcessStartInfo(command[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        info.ArgumentList.Add(ScriptPath);
        _process = Process.Start(info)!;
        var line = _process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(20)) || line.Result is null)
            throw new InvalidOperationException($"{interpreterId} did not park: {(_process.HasExited ? _process.StandardError.ReadToEnd() : "timeout")}");
        ReadyLine = line.Result;
    }

    public string ScriptPath { get; }
    public int Pid => _process.Id;
    /// <summary>What the script printed when parked.</summary>
    public string ReadyLine { get; }

    public void Dispose()
    {
        try { _process.Kill(); _process.WaitForExit(5000); } catch (InvalidOperationException) { }
        _process.Dispose();
        File.Delete(ScriptPath);
    }
}
