using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pyprobe.LaunchOrder;

/// <summary>
/// One launch as users run it: a Python running bench/workloads/leaf.py (leaf() 1,000 times a second until its stdin
/// closes), and pyprobe attached to it with <see cref="Arguments"/> ("{pid}" stands for the workload's pid) until its
/// "Attached" line and a little after, then stopped with Ctrl-C's signal, so its detach runs too.
/// </summary>
internal sealed partial record LaunchScenario(string Name, string Python, IReadOnlyList<string> Arguments)
{
    private static readonly TimeSpan AttachTimeout = TimeSpan.FromSeconds(60);

    public void Run(string pyprobe, string workload)
    {
        using var target = Start(Python, [workload, "0", "--rate", "1000", "--forever"], stdin: true);
        var ready = target.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"{Name}: the workload ended before it was ready");
        var pid = ready.Split(' ')[1];
        using var tracer = Start(pyprobe, Arguments.Select(a => a.Replace("{pid}", pid)).ToList(), stdin: false);
        var attached = tracer.StandardError.ReadLineAsync();
        // Its events go to stdout: drain them, or a full pipe would stall it.
        _ = tracer.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
        while (attached.Wait(AttachTimeout) && attached.Result is { } line && !line.StartsWith("Attached", StringComparison.Ordinal))
            attached = tracer.StandardError.ReadLineAsync();
        if (!attached.IsCompletedSuccessfully || attached.Result is null)
            throw new InvalidOperationException($"{Name}: pyprobe did not attach ({string.Join(' ', Arguments)})");
        _ = tracer.StandardError.BaseStream.CopyToAsync(Stream.Null);
        Thread.Sleep(300);
        Kill(tracer.Id, 2 /* SIGINT */);
        if (!tracer.WaitForExit(AttachTimeout)) throw new InvalidOperationException($"{Name}: pyprobe did not stop on SIGINT");
        target.StandardInput.Close();
        if (!target.WaitForExit(TimeSpan.FromSeconds(10))) target.Kill();
    }

    private static Process Start(string file, IReadOnlyList<string> arguments, bool stdin)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = stdin,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        return Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
