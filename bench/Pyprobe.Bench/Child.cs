using System.Diagnostics;

namespace Pyprobe.Bench;

/// <summary>A child process with its stdout/stderr lines captured with the time they arrived.</summary>
internal sealed class Child : IDisposable
{
    private readonly object _gate = new();
    private readonly List<(double At, string Line)> _out = [];
    private readonly List<(double At, string Line)> _err = [];
    private readonly Stopwatch _clock;

    public Process Process { get; }
    public int Pid => Process.Id;
    public IReadOnlyList<string> Argv { get; }

    private Child(IReadOnlyList<string> argv, bool captureOut, IReadOnlyDictionary<string, string>? env)
    {
        Argv = argv;
        var info = new ProcessStartInfo(argv[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = captureOut,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in argv.Skip(1)) info.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) info.Environment[k] = v;
        Process = new Process { StartInfo = info };
        Process.OutputDataReceived += (_, e) => Add(_out, e.Data);
        Process.ErrorDataReceived += (_, e) => Add(_err, e.Data);
        _clock = Stopwatch.StartNew();
        LaunchedAtNs = (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));
        Process.Start();
        if (captureOut) Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
    }

    /// <summary>CLOCK_MONOTONIC just before the launch, in ns (pyprobe's PYPROBE_LAUNCH_PHASES marks use the same clock).</summary>
    public long LaunchedAtNs { get; }

    /// <summary>Seconds from launch to now.</summary>
    public double Elapsed => _clock.Elapsed.TotalSeconds;

    public static Child Start(IReadOnlyList<string> argv, bool captureOut = true, IReadOnlyDictionary<string, string>? env = null) => new(argv, captureOut, env);

    private void Add(List<(double, string)> list, string? line)
    {
        if (line is null) return;
        lock (_gate)
        {
            list.Add((_clock.Elapsed.TotalSeconds, line));
            Monitor.PulseAll(_gate);
        }
    }

    public List<string> Out { get { lock (_gate) return _out.Select(x => x.Line).ToList(); } }
    public List<string> Err { get { lock (_gate) return _err.Select(x => x.Line).ToList(); } }

    /// <summary>Waits for a line matching <paramref name="match"/> on stdout or stderr; returns it with its arrival time.</summary>
    public (double At, string Line)? WaitLine(Func<string, bool> match, TimeSpan timeout, bool stderr = false)
    {
        var deadline = _clock.Elapsed + timeout;
        lock (_gate)
        {
            var list = stderr ? _err : _out;
            var seen = 0;
            while (true)
            {
                for (; seen < list.Count; seen++)
                    if (match(list[seen].Line)) return list[seen];
                if (Process.HasExited && _clock.Elapsed > deadline - timeout + TimeSpan.FromMilliseconds(200))
                {
                    // Give the readers a moment to deliver the last lines of an exited process.
                    Monitor.Wait(_gate, 50);
                    for (; seen < list.Count; seen++)
                        if (match(list[seen].Line)) return list[seen];
                    return null;
                }
                var left = deadline - _clock.Elapsed;
                if (left <= TimeSpan.Zero) return null;
                Monitor.Wait(_gate, left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
            }
        }
    }

    public void WriteLine(string line)
    {
        Process.StandardInput.WriteLine(line);
        Process.StandardInput.Flush();
    }

    public void CloseInput() => Process.StandardInput.Close();

    public void Signal(int signal)
    {
        if (!Process.HasExited) Native.Kill(Pid, signal);
    }

    /// <summary>Waits for exit (and for the output readers to finish); kills after the timeout.</summary>
    public bool Wait(TimeSpan timeout)
    {
        if (Process.WaitForExit(timeout))
        {
            Process.WaitForExit();
            return true;
        }
        try { Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        Process.WaitForExit();
        return false;
    }

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            try { Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Process.WaitForExit(5000);
        }
        Process.Dispose();
    }
}
