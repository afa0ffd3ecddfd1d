using System.Diagnostics;

namespace Pyprobe.Cli.Tests;

/// <summary>What one run of dist/pyprobe produced.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StdoutLines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the real NativeAOT binary dist/pyprobe (built by scripts/build.sh, which scripts/test.sh
/// runs before the tests). The repository root is found by walking up from the test assembly to
/// pyprobe.slnx.
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

    /// <summary>Runs pyprobe with <paramref name="args"/>; <paramref name="environment"/> entries override (null value removes).</summary>
    public static CliResult Run(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? timeout = null) =>
        RunIn(null, args, environment, timeout);

    /// <summary>Runs pyprobe in <paramref name="workingDirectory"/> (null: this process's).</summary>
    public static CliResult RunIn(string? workingDirectory, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        if (!File.Exists(Path))
            Assert.Fail($"{Path} is missing: run scripts/build.sh (scripts/test.sh builds it before running the tests)");
        var info = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment.Remove("PYPROBE_DEBUG");
        if (environment is not null)
            foreach (var (key, value) in environment)
            {
                if (value is null) info.Environment.Remove(key);
                else info.Environment[key] = value;
            }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {Path}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"pyprobe {string.Join(' ', args)} did not finish in time");
        }
        // Its output ends when every process holding it has gone: one that outlives pyprobe (a command it started and
        // left stopped) would hold it forever, so the wait is bounded and says so.
        if (!Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(30)))
            Assert.Fail($"pyprobe {string.Join(' ', args)} exited, but its output was still held open 30 s later: a process it started outlived it");
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    public static CliResult Run(params string[] args) => Run(args, null);
}
