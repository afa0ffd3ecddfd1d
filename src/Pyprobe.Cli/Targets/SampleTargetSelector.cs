using Pyprobe.Cli.Commands;
using Pyprobe.Python.Launching;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Cli.Targets;

/// <summary>
/// The sampling profiler's targets (record, and top where function events are not available): any CPython,
/// probes or not. -p checks each pid now, so a wrong one is a one-line error before anything is attached.
/// </summary>
internal static class SampleTargetSelector
{
    public static (TargetSet Targets, SampleScope Scope, Func<SamplingSession, string> Where) Resolve(TargetSelection selection)
    {
        switch (selection)
        {
            case TargetSelection.Processes processes:
                var described = processes.Pids.Select(Check).ToList();
                return (TargetSet.OfProcesses(processes.Pids), new SampleScope.Processes(processes.Pids), _ => string.Join("; ", described));
            case TargetSelection.AllProcesses all:
                if (all.Path is { } interpreter && !File.Exists(interpreter)) throw new CliException($"{interpreter}: no such file");
                return (TargetSet.SystemWide(), new SampleScope.Machine(all.Path),
                    s => $"{(all.Path is null ? "every Python process" : $"every process running {all.Path}")} ({s.Pids.Count} now, new ones too)");
            case TargetSelection.Spawn spawn:
                TargetSelector.RequireCommand(spawn.Argv);
                var child = HeldCommand.Start(spawn.Argv);
                return (TargetSet.OfCommand(child), new SampleScope.Descendants(child.Pid), _ => $"'{string.Join(' ', spawn.Argv)}' (pid {child.Pid}) and the Python processes it starts");
            default:
                throw new InvalidOperationException("unknown target selection");
        }
    }

    /// <summary>"pid 42 (CPython 3.12.1, /usr/lib/libpython3.12.so.1.0)", or a one-line error saying why it cannot be sampled.</summary>
    private static string Check(int pid)
    {
        try
        {
            using var process = CPythonProcess.Attach(pid);
            return $"pid {pid} (CPython {process.Binary.Version}, {process.Binary.DisplayPath})";
        }
        catch (UnsupportedRuntimeException e)
        {
            throw new CliException($"cannot sample process {pid}: {e.Message}");
        }
        catch (UsdtException e)
        {
            throw new CliException(e.Message);
        }
    }

}
