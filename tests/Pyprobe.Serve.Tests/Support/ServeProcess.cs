using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Pyprobe.Cli.Tests;

namespace Pyprobe.Serve.Tests.Support;

/// <summary>dist/pyprobe serve on a loopback port the kernel chooses; stopped with SIGINT when disposed.</summary>
internal sealed partial class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    public int Port { get; }
    public int Pid => _process.Id;
    public string MetricsUrl => $"http://127.0.0.1:{Port}/metrics";
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    private ServeProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public static ServeProcess Start(params string[] args)
    {
        if (!File.Exists(PyprobeBinary.Path)) Assert.Fail($"{PyprobeBinary.Path} is missing: run scripts/build.sh");
        var info = new ProcessStartInfo(PyprobeBinary.Path) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add("--listen");
        info.ArgumentList.Add("127.0.0.1:0");
        foreach (var a in args) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var stderr = new StringBuilder();
        var serving = new TaskCompletionSource<int>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { serving.TrySetResult(0); return; }
            lock (stderr) stderr.AppendLine(e.Data);
            if (Serving().Match(e.Data) is { Success: true } m) serving.TrySetResult(int.Parse(m.Groups[1].Value));
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (!serving.Task.Wait(TimeSpan.FromSeconds(30)) || serving.Task.Result == 0)
        {
            try { process.Kill(); } catch (InvalidOperationException) { }
            Assert.Fail($"pyprobe serve did not start: {stderr}");
        }
        var serve = new ServeProcess(process, serving.Task.Result);
        lock (stderr) serve._stderr.Append(stderr);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (serve._stderr) serve._stderr.AppendLine(e.Data); };
        return serve;
    }

    /// <summary>
    /// Waits until /metrics shows the process with its probe counters, then two snapshots more, so that everything the
    /// process did before this call is counted in the /metrics text returned.
    /// </summary>
    public string WaitUntilAttached(int pid)
    {
        var label = $"pid=\"{pid}\"";
        var deadline = DateTime.UtcNow.AddSeconds(30);
        long? seenAt = null;
        while (DateTime.UtcNow < deadline)
        {
            var text = MetricsText.Get(MetricsUrl);
            var sequence = (long)MetricsText.Value(text, "pyprobe_snapshots_total")!.Value;
            if (seenAt is null && MetricsText.Value(text, "pyprobe_imports_total", label) is not null) seenAt = sequence;
            if (seenAt is not null && sequence >= seenAt + 2) return text;
            Thread.Sleep(200);
        }
        Assert.Fail($"pyprobe serve did not pick up process {pid}: {Stderr}");
        return "";
    }

    /// <summary>Resident memory of pyprobe now, in KiB (VmRSS).</summary>
    public long ResidentKiB()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line[6..].Trim().Split(' ')[0]);
        return -1;
    }

    [GeneratedRegex(@"serving http://127\.0\.0\.1:(\d+)/metrics")]
    private static partial Regex Serving();

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Process.Start("kill", ["-INT", _process.Id.ToString()])!.WaitForExit();
            if (!_process.WaitForExit(10_000)) _process.Kill();
        }
        _process.Dispose();
    }
}
