using System.Diagnostics;
using Pyprobe.Cli.Tests;

namespace Pyprobe.Serve.Tests.Support;

/// <summary>Workloads/known_counts.py under a Debian interpreter with probes: started, told to go, killed when disposed.</summary>
internal sealed class KnownCountsWorkload : IDisposable
{
    private readonly Process _process;

    private KnownCountsWorkload(Process process) => _process = process;

    public int Pid => _process.Id;

    public static KnownCountsWorkload Start(string version)
    {
        var python = CachedPythons.Get(version);
        var script = Path.Combine(AppContext.BaseDirectory, "Workloads", "known_counts.py");
        var info = new ProcessStartInfo(python.LauncherPath) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        var process = Process.Start(info)!;
        var workload = new KnownCountsWorkload(process);
        workload.Expect("ready");
        return workload;
    }

    /// <summary>Runs the counted part and waits until it is done.</summary>
    public void Go()
    {
        _process.StandardInput.WriteLine("go");
        _process.StandardInput.Flush();
        Expect("done");
    }

    private void Expect(string line)
    {
        var read = _process.StandardOutput.ReadLineAsync();
        if (!read.Wait(TimeSpan.FromSeconds(60)) || read.Result != line) Assert.Fail($"the workload did not print '{line}'");
    }

    public void Dispose()
    {
        try { _process.Kill(); _process.WaitForExit(5000); } catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
