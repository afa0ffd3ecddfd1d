using Pyprobe.Cli.Commands;
using Pyprobe.Python.Launching;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt;

namespace Pyprobe.Cli.Targets;

/// <summary>What a tracing command attaches to, and the held child when it was started by `-- CMD`.</summary>
internal sealed class TraceTargets : IDisposable
{
    private TraceTargets(IReadOnlyList<TraceTarget> targets, HeldCommand? child)
    {
        Targets = targets;
        Child = child;
    }

    public IReadOnlyList<TraceTarget> Targets { get; }
    public HeldCommand? Child { get; }

    /// <summary>More than one process can produce events, so lines need a pid column.</summary>
    public bool ManyProcesses => Targets.Any(t => t.AllProcesses) || Targets.Sum(t => t.Pids.Count) > 1;

    /// <summary>Resolves the user's selection; for `-- CMD` the command is started, held before it runs anything.</summary>
    public static TraceTargets Resolve(TargetSelection selection) => selection switch
    {
        TargetSelection.Processes processes => new TraceTargets(ForProcesses(processes.Pids), null),
        TargetSelection.AllProcesses all => new TraceTargets(ForAll(all.Path), null),
        TargetSelection.Spawn spawn => Launch(spawn.Argv),
        _ => throw new InvalidOperationException("unknown target selection"),
    };

    private static List<TraceTarget> ForProcesses(IReadOnlyList<int> pids)
    {
        // ProbeFileResolver gives each failure (no such pid, not Python, no probes) its own message.
        var files = pids.Select(pid => (pid, file: ProbeFileResolver.FromProcess(pid))).ToList();
        return files
            .GroupBy(x => x.file.Process!.HostPath, StringComparer.Ordinal)
            .Select(g =>
            {
                var first = g.First().file;
                return new TraceTarget(first.Process!.HostPath, first.DisplayPath, first.Binary, g.Select(x => x.pid).ToList(), first.Version?.Version);
            })
            .ToList();
    }

    private static List<TraceTarget> ForAll(string? path)
    {
        if (path is not null)
        {
            var file = ProbeFileResolver.FromPath(path);
            var real = new FileInfo(file.DisplayPath).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(file.DisplayPath);
            return [new TraceTarget(real, file.DisplayPath, file.Binary, [], file.Version?.Version)];
        }
        // Every Python with probes that runs now; new processes of the same binaries are traced too.
        var targets = new Dictionary<string, TraceTarget>(StringComparer.Ordinal);
        foreach (var pid in RunningPids())
        {
            try
            {
                var process = PythonProcessResolver.Resolve(pid);
                if (!targets.ContainsKey(process.HostPath) && process.UsdtBinary.HasProvider(PythonProbeCatalog.Provider))
                {
                    var version = Python.Versions.PythonVersionDetector.Detect(process.UsdtBinary.Elf, process.HostPath)?.Version;
                    targets[process.HostPath] = new TraceTarget(process.HostPath, process.DisplayPath, process.UsdtBinary, [], version);
                }
            }
            catch (UsdtException)
            {
                // not Python, gone, or without probes: --all only takes Pythons it can trace
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        if (targets.Count == 0)
            throw new CliException("no running Python with USDT probes found; name the interpreter: --all /usr/bin/python3.X");
        return targets.Values.ToList();
    }

    private static IEnumerable<int> RunningPids()
    {
        var self = Environment.ProcessId;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(directory), out var pid) && pid != self) yield return pid;
    }

    private static TraceTargets Launch(IReadOnlyList<string> argv)
    {
        var binary = LaunchedInterpreter.Resolve(argv);
        var file = ProbeFileResolver.FromPath(binary);
        var child = HeldCommand.Start(argv);
        return new TraceTargets([new TraceTarget(binary, file.DisplayPath, file.Binary, [child.Pid], file.Version?.Version)], child);
    }

    /// <summary>True while at least one traced process (or the child) is alive; --all never ends by itself.</summary>
    public bool AnyTargetAlive()
    {
        if (Child is not null) return !Child.HasExited;
        if (Targets.Any(t => t.AllProcesses)) return true;
        return Targets.SelectMany(t => t.Pids).Any(IsAlive);
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var end = stat.LastIndexOf(')');
            return end < 0 || end + 2 >= stat.Length || stat[end + 2] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>
    /// A child still held (an error before it was resumed) is killed: it has run nothing yet, and the
    /// user asked for it to run traced.
    /// </summary>
    public void Dispose() => Child?.Dispose();
}
