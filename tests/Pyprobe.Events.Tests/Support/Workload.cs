using System.Diagnostics;

using Pyprobe.Cli.Tests;

namespace Pyprobe.Events.Tests;

/// <summary>Workloads/events.py started on a cached interpreter, waiting for "go"; and pyprobe runs against it.</summary>
public sealed class Workload : IDisposable
{
    public static readonly string Script = System.IO.Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Events.Tests", "Workloads", "events.py");

    private readonly Process _process;

    public Workload(CachedPython python)
    {
        Directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"pyprobe-events-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
        var command = python.Command(Script, Directory);
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        _process = Process.Start(info)!;
        Assert.Equal("ready", _process.StandardOutput.ReadLine());
    }

    public string Directory { get; }
    public int Pid => _process.Id;
    public string AuditPath => System.IO.Path.Combine(Directory, "pyprobe-audit-XYZ");

    /// <summary>Lets the workload make its events and waits until it has.</summary>
    public void Go()
    {
        _process.StandardInput.WriteLine("go");
        _process.StandardInput.Flush();
        Assert.Equal("done", _process.StandardOutput.ReadLine());
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10000)) _process.Kill();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }

    /// <summary>Runs pyprobe ARGS -p PID around Go(): attach, make the events, stop with SIGINT; returns its output.</summary>
    public CliResult Trace(params string[] args)
    {
        var info = new ProcessStartInfo(PyprobeBinary.Path) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.ArgumentList.Add("-p");
        info.ArgumentList.Add(Pid.ToString());
        using var pyprobe = Process.Start(info)!;
        var stdout = pyprobe.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();
        string? line;
        while ((line = pyprobe.StandardError.ReadLine()) is not null)
        {
            stderr.AppendLine(line);
            if (line.StartsWith("Attached", StringComparison.Ordinal)) break;
        }
        Assert.True(line is not null, $"pyprobe {string.Join(' ', args)} did not attach: {stderr}");
        Go();
        Thread.Sleep(100);
        Process.Start("kill", ["-INT", pyprobe.Id.ToString()])!.WaitForExit();
        var rest = pyprobe.StandardError.ReadToEndAsync();
        if (!pyprobe.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            pyprobe.Kill();
            Assert.Fail("pyprobe did not stop after SIGINT");
        }
        pyprobe.WaitForExit();
        return new CliResult(pyprobe.ExitCode, stdout.Result, stderr + rest.Result);
    }
}
