using System.Diagnostics;
using System.Text;

namespace Pyprobe.Faults.Tests.Support;

/// <summary>What one run of dist/pyprobe produced.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StdoutLines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{(Stdout.Length > 4000 ? Stdout[..4000] + "…" : Stdout)}--- stderr ---\n{Stderr}";
}

/// <summary>
/// The real NativeAOT binary dist/pyprobe (built by scripts/build.sh, which scripts/test.sh runs
/// before the tests); the repository root is found by walking up to pyprobe.slnx.
/// </summary>
public static class PyprobeBinary
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Path => System.IO.Path.Combine(RepoRoot, "dist", "pyprobe");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "pyprobe.slnx")))
                return dir.FullName;
        throw new InvalidOperationException($"pyprobe.slnx not found above {AppContext.BaseDirectory}");
    }

    public static void EnsureBuilt()
    {
        if (!File.Exists(Path))
            Assert.Fail($"{Path} is missing: run scripts/build.sh (scripts/test.sh builds it before running the tests)");
    }

    /// <summary>Runs <paramref name="program"/> (pyprobe unless given) to the end; <paramref name="environment"/> entries override (null removes).</summary>
    public static CliResult Run(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? timeout = null, string? program = null)
    {
        EnsureBuilt();
        using var process = Start(program ?? Path, args, environment, redirectInput: false);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program ?? "pyprobe"} {string.Join(' ', args)} did not finish in time");
        }
        process.WaitForExit();
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    internal static Process Start(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment, bool redirectInput)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.Latin1,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment.Remove("PYPROBE_DEBUG");
        info.Environment.Remove("PYPROBE_FORCE_PERF_EVENT");
        if (environment is not null)
            foreach (var (key, value) in environment)
            {
                if (value is null) info.Environment.Remove(key);
                else info.Environment[key] = value;
            }
        return Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
    }
}

/// <summary>
/// A `pyprobe trace` running in the background: started, waited for until its "Attached" line, then
/// stopped by a signal or by its target's exit. Stdout is read as Latin-1 so every byte survives.
/// </summary>
public sealed class TraceProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Task<string> _stdout;
    private readonly TaskCompletionSource<string> _attached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _stderrPump;

    private TraceProcess(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderrPump = Task.Run(() =>
        {
            while (process.StandardError.ReadLine() is { } line)
            {
                lock (_stderr) _stderr.Append(line).Append('\n');
                if (line.StartsWith("Attached ", StringComparison.Ordinal)) _attached.TrySetResult(line);
            }
            _attached.TrySetResult("");
        });
    }

    public int Pid => _process.Id;
    public string AttachedLine { get; private set; } = "";

    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    /// <summary>Starts pyprobe with <paramref name="args"/> and waits for its "Attached" line (fails the test if it exits first).</summary>
    public static TraceProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        PyprobeBinary.EnsureBuilt();
        var trace = new TraceProcess(PyprobeBinary.Start(PyprobeBinary.Path, args, environment, redirectInput: false));
        if (!trace._attached.Task.Wait(TimeSpan.FromSeconds(30)) || trace._attached.Task.Result == "")
        {
            trace.Kill();
            Assert.Fail($"pyprobe {string.Join(' ', args)} did not attach: {trace.Stderr}");
        }
        trace.AttachedLine = trace._attached.Task.Result;
        return trace;
    }

    public bool HasExited => _process.HasExited;

    public void Signal(int signal) => Posix.Kill(Pid, signal);

    public void Kill()
    {
        try { _process.Kill(); } catch (InvalidOperationException) { }
    }

    /// <summary>Waits for pyprobe to end by itself (or after a signal sent before).</summary>
    public CliResult Finish(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            Assert.Fail($"pyprobe did not finish in {timeout.TotalSeconds} s: {Stderr}");
        }
        _process.WaitForExit();
        _stderrPump.Wait(TimeSpan.FromSeconds(10));
        return new CliResult(_process.ExitCode, _stdout.Result, Stderr);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
            _process.WaitForExit(5000);
        }
        _process.Dispose();
    }
}
