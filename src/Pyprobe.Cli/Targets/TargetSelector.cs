using Pyprobe.Cli.Commands;
using Pyprobe.Python.Launching;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt;

namespace Pyprobe.Cli.Targets;

/// <summary>
/// Turns the command line's target (-p, --all, -- CMD) into a <see cref="TargetSet"/> with
/// <see cref="TargetResolver"/>, checking each named pid or file with <see cref="ProbeFileResolver"/> so every
/// failure is one line that says what to do.
/// </summary>
internal static class TargetSelector
{
    /// <summary>Resolves the user's selection; for `-- CMD` the command is started, held before it runs anything.</summary>
    /// <param name="withoutProbes">Accept processes whose interpreter has no USDT probes (function events come from _PyEval_EvalFrameDefault then).</param>
    public static TargetSet Resolve(TargetSelection selection, bool withoutProbes = false) => selection switch
    {
        TargetSelection.Processes processes => TargetSet.Of(TargetResolver.ForProcesses(processes.Pids, withoutProbes ? FromProcessWithOrWithoutProbes : FromProcess)),
        TargetSelection.AllProcesses all => TargetSet.Of(ForAll(all.Path)),
        TargetSelection.Spawn spawn => Launch(spawn.Argv),
        _ => throw new InvalidOperationException("unknown target selection"),
    };

    private static TraceTarget FromProcess(int pid)
    {
        var file = ProbeFileResolver.FromProcess(pid);
        return new TraceTarget(file.Process!.HostPath, file.DisplayPath, file.Binary, [pid], file.Version?.Version);
    }

    private static TraceTarget FromProcessWithOrWithoutProbes(int pid)
    {
        try
        {
            return FromProcess(pid);
        }
        catch (CliException e) when (e.Message.Contains("has no USDT probes", StringComparison.Ordinal))
        {
            // The interpreter without probes: its runtime binary is the target (function events need no probes).
            try
            {
                using var process = CPythonProcess.Attach(pid);
                var binary = process.Binary;
                return new TraceTarget(binary.OpenPath, binary.DisplayPath, UsdtBinary.Open(binary.OpenPath), [pid], binary.Version);
            }
            catch (UnsupportedRuntimeException)
            {
                throw e;
            }
        }
    }

    private static IReadOnlyList<TraceTarget> ForAll(string? path)
    {
        if (path is not null)
        {
            var file = ProbeFileResolver.FromPath(path);
            var real = new FileInfo(file.DisplayPath).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(file.DisplayPath);
            return [new TraceTarget(real, file.DisplayPath, file.Binary, [], file.Version?.Version)];
        }
        // Every Python with probes that runs now; new processes of the same binaries are traced too.
        var running = TargetResolver.RunningPythons();
        if (running.Count == 0)
            throw new CliException("no running Python with USDT probes found; name the interpreter: --all /usr/bin/python3.X");
        return running;
    }

    private static TargetSet Launch(IReadOnlyList<string> argv)
    {
        var binary = LaunchedInterpreter.Resolve(argv);
        var file = ProbeFileResolver.FromPath(binary);
        var child = HeldCommand.Start(argv);
        return TargetSet.Of([new TraceTarget(binary, file.DisplayPath, file.Binary, [child.Pid], file.Version?.Version)], child);
    }
}
