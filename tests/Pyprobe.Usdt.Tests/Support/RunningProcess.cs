using System.Diagnostics;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// A child process for /proc-based tests, killed (by its own PID, with its children) on dispose.
/// <see cref="Start"/> waits until the process has exec'd into what the test needs (e.g. a
/// launcher script has become ld.so + python), judged by a predicate on /proc/PID/maps.
/// </summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private RunningProcess(Process p) => _process = p;

    public int Pid => _process.Id;

    public static RunningProcess Start(string file, IEnumerable<string> args, Func<string, bool> mapsReady)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var rp = new RunningProcess(p);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (p.HasExited)
                throw new InvalidOperationException($"{file} exited early ({p.ExitCode}): {p.StandardError.ReadToEnd()}");
            try
            {
                if (mapsReady(File.ReadAllText($"/proc/{p.Id}/maps"))) return rp;
            }
            catch (IOException) { }
            Thread.Sleep(20);
        }
        rp.Dispose();
        throw new TimeoutException($"{file} did not get ready");
    }

    /// <summary>
    /// Starts a Python that sleeps 30 s, returning once it printed "ready": by then the loader
    /// has mapped every library (waiting for maps alone races with ld.so mapping libpython).
    /// </summary>
    public static RunningProcess Python(string file, params string[] prefixArgs)
    {
        var rp = Start(file, [.. prefixArgs, "-c", "import time; print('ready', flush=True); time.sleep(30)"], _ => true);
        var line = rp._process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        if (line != "ready")
        {
            rp.Dispose();
            throw new InvalidOperationException($"{file} did not report ready (got '{line}')");
        }
        return rp;
    }

    /// <summary>The next line the process writes to stdout (null at its end); fails after <paramref name="timeout"/>.</summary>
    public string? ReadLine(TimeSpan timeout) => _process.StandardOutput.ReadLineAsync().WaitAsync(timeout).GetAwaiter().GetResult();

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
