using System.Diagnostics;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// A workload started with its standard input and output piped and parked before its work: it prints "ready",
/// then waits for "go" on its input, so a tracer can attach first. Killed when disposed if still running.
/// </summary>
public sealed class WaitingWorkload : IDisposable
{
    private WaitingWorkload(Process process) => Process = process;

    public Process Process { get; }
    public int Pid => Process.Id;

    /// <summary>Starts <paramref name="command"/> and waits for its "ready"; a missing program fails the test.</summary>
    public static WaitingWorkload Start(IReadOnlyList<string> command) => new(StartProcess(command));

    /// <summary>The same, for a test that manages the process itself.</summary>
    public static Process StartProcess(IReadOnlyList<string> command)
    {
        if (!File.Exists(command[0])) Assert.Fail($"{command[0]} is missing");
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        Assert.Equal("ready", process.StandardOutput.ReadLine());
        return process;
    }

    public void Go()
    {
        Process.StandardInput.WriteLine("go");
        Process.StandardInput.Flush();
    }

    public string? ReadLine() => Process.StandardOutput.ReadLine();

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited) Process.Kill();
            Process.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        Process.Dispose();
    }
}
