using System.Diagnostics;
using System.Globalization;
using System.Text;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Pyprobe.Bench;

/// <summary>Settings and helpers shared by every section.</summary>
internal sealed class Bench
{
    public required string Root { get; init; }
    public required string Pyprobe { get; init; }
    public required string Workload { get; init; }
    public required string TempDir { get; init; }
    /// <summary>An earlier pyprobe binary (--baseline PATH) measured side by side in the sections that support it.</summary>
    public string? Baseline { get; init; }
    public int Reps { get; init; } = 5;
    public int Calls { get; init; } = 1_000_000;
    public int BpftraceSettle { get; init; } = 1000;
    public bool HasCalls { get; set; }

    /// <summary>dist/pyprobe has <c>calls --count</c> (a baseline binary may predate it).</summary>
    public bool HasCallsCount { get; set; }
    private int _counter;

    public string TempFile(string tag) => Path.Combine(TempDir, $"{tag}-{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}.out");

    public static void Log(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}

internal static class Program
{
    public static int Main(string[] args)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var root = Path.GetFullPath(Arg(args, "--root") ?? Directory.GetCurrentDirectory());
        var quick = args.Contains("--quick");
        var only = Arg(args, "--only")?.Split(',').ToHashSet();
        var output = Arg(args, "--out") ?? Path.Combine(root, "BENCHMARKS.md");
        var temp = Path.Combine(Path.GetTempPath(), $"pyprobe-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(temp);
        var bench = new Bench
        {
            Root = root,
            Pyprobe = Path.Combine(root, "dist", "pyprobe"),
            Workload = Path.Combine(root, "bench", "workloads", "leaf.py"),
            TempDir = temp,
            Baseline = Arg(args, "--baseline") is { } baseline ? Path.GetFullPath(baseline) : null,
            Reps = int.TryParse(Arg(args, "--reps"), out var r) ? r : quick ? 2 : 5,
            Calls = int.TryParse(Arg(args, "--calls"), out var n) ? n : quick ? 200_000 : 1_000_000,
        };
        try
        {
            var report = new Report(bench, quick);
            var total = Stopwatch.StartNew();
            report.Environment();
            var callsHelp = Sh(bench.Pyprobe, "calls", "--help");
            bench.HasCalls = callsHelp.Code == 0;
            if (!bench.HasCalls) Bench.Log("pyprobe calls is not in dist/pyprobe: its column is skipped");
            bench.HasCallsCount = bench.HasCalls && callsHelp.Out.Contains("--count", StringComparison.Ordinal);
            var pythons = Pythons.Load(temp);
            var p39 = pythons.FirstOrDefault(p => p.Version == "3.9") ?? throw new InvalidOperationException("Python 3.9 is not in the cache: run scripts/fetch-pythons.sh 3.9");
            var p315 = pythons.FirstOrDefault(p => p.Version == "3.15");
            report.Pythons([p39, .. p315 is null ? Array.Empty<Py>() : [p315]]);

            bool Want(string s) => only is null || only.Contains(s);
            if (Want("overhead")) Sections.Overhead(bench, report, p39, p315);
            if (Want("breakdown")) ProgramBreakdown.Section(bench, report, p39, p315);
            if (Want("rate")) Sections.Rates(bench, report, p39);
            if (Want("startup")) Sections.Startup(bench, report, p39);
            if (Want("throughput")) Sections.Throughput(bench, report, p39);
            if (Want("scale")) Sections.Scale(bench, report, p39);
            if (Want("profiler")) ProfilerSection.Run(bench, report, p315, quick);
            if (Want("evalframe")) EvalFrameCases.Section(bench, report, pythons);
            if (Want("dump")) DumpSection.Run(bench, report, pythons);
            report.Finish(total.Elapsed);
            var update = args.Contains("--update") && only is not null && File.Exists(output);
            File.WriteAllText(output, update ? report.RenderInto(File.ReadAllText(output)) : report.Render());
            Bench.Log($"wrote {output} in {total.Elapsed.TotalMinutes:0.0} min");
            return 0;
        }
        finally
        {
            try { Directory.Delete(temp, recursive: true); } catch (IOException) { }
        }
    }

    private static string? Arg(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static (int Code, string Out) Sh(params string[] argv) => Sh(null, argv);

    public static (int Code, string Out) Sh(IReadOnlyDictionary<string, string>? env, params string[] argv)
    {
        try
        {
            var info = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in argv.Skip(1)) info.ArgumentList.Add(a);
            if (env is not null) foreach (var (k, v) in env) info.Environment[k] = v;
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            return (p.ExitCode, (stdout.Result + stderr.Result).Trim());
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (127, e.Message);
        }
    }
}

/// <summary>The Debian interpreters of ${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/pythons.tsv.</summary>
internal static class Pythons
{
    public static List<Py> Load(string privateDir)
    {
        var cache = Environment.GetEnvironmentVariable("PYPROBE_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "pyprobe");
        var manifest = Path.Combine(cache, "pythons", "pythons.tsv");
        var list = new List<Py>();
        if (!File.Exists(manifest)) return list;
        foreach (var line in File.ReadAllLines(manifest))
        {
            var f = line.Split('\t');
            if (f.Length < 8 || !File.Exists(f[2])) continue;
            // A private copy of the interpreter (same bytes, own inode): system-wide attaches (bpftrace without -p,
            // pyprobe --all) then see the bench's processes only, not other Pythons running the cached binary.
            // PYTHONHOME points it at the cached standard library.
            var copyDir = Path.Combine(privateDir, "python" + f[0], "bin");
            Directory.CreateDirectory(copyDir);
            var copy = Path.Combine(copyDir, Path.GetFileName(f[2]));
            File.Copy(f[2], copy, overwrite: true);
            File.SetUnixFileMode(copy, File.GetUnixFileMode(f[2]));
            var home = Path.GetDirectoryName(Path.GetDirectoryName(f[2]))!;
            var env = new Dictionary<string, string> { ["PYTHONHOME"] = home };
            // The exact command line of the interpreter, through its own loader for 3.13+ (as the tests do).
            List<string> command = f[4] == "yes" ? [f[5], "--library-path", f[6], copy]
                : f[6] is "-" or "" ? [copy] : ["/lib64/ld-linux-x86-64.so.2", "--library-path", f[6], copy];
            var py = new Py(f[0], f[1], copy, f[2], command, env);
            var check = Program.Sh(env, [.. command, "-c", "import sys, encodings; print(sys.version.split()[0])"]);
            if (check.Code == 0) list.Add(py with { FullVersion = check.Out.Trim() });
            else Bench.Log($"Python {f[0]} does not run here: {check.Out}");
        }
        return list;
    }
}
