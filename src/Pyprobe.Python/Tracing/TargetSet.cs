using System.Diagnostics;
using Pyprobe.Python.Launching;

namespace Pyprobe.Python.Tracing;

/// <summary>What a run attaches to, and the held child when it was started by `-- CMD`.</summary>
public sealed class TargetSet : IDisposable
{
    private readonly bool _systemWide;
    private readonly IReadOnlyList<int> _pids;
    // Runs poll every 10 ms and each look at a pid is an open/read/close of /proc/PID/stat (with .NET's flocks):
    // about 1% of a CPU for nothing. A target's exit noticed up to this much later ends the run just as well.
    private static readonly TimeSpan AliveCheckInterval = TimeSpan.FromMilliseconds(100);
    private long _aliveCheckedAt;

    private TargetSet(IReadOnlyList<TraceTarget> targets, HeldCommand? child, bool systemWide, IReadOnlyList<int>? pids = null, bool heldBeforeInterpreter = true)
    {
        TargetsHeld = child is not null && heldBeforeInterpreter;
        Targets = targets;
        Child = child;
        _systemWide = systemWide;
        _pids = pids ?? targets.SelectMany(t => t.Pids).ToList();
    }

    public IReadOnlyList<TraceTarget> Targets { get; }
    public HeldCommand? Child { get; }

    /// <summary>
    /// The targets are a command held before its interpreter exists (its probes attach by file; there is no process
    /// memory to read or hook to set yet). False for a command followed to its interpreter's start.
    /// </summary>
    public bool TargetsHeld { get; }

    /// <summary>More than one process can produce events, so lines need a pid column.</summary>
    public bool ManyProcesses => _systemWide || Targets.Any(t => t.AllProcesses) || _pids.Count > 1;

    /// <summary>Targets already resolved (see <see cref="TargetResolver"/>), with the child that runs them, if any.</summary>
    public static TargetSet Of(IReadOnlyList<TraceTarget> targets, HeldCommand? child = null) => new(targets, child, false);

    /// <summary>A command followed until one of its processes started CPython: that process is the target, stopped until released.</summary>
    public static TargetSet OfFollowed(TraceTarget target, HeldCommand child) => new([target], child, false, heldBeforeInterpreter: false);

    /// <summary>Running processes with no probe file to attach to (the sampling profiler reads any CPython): ends when they have all exited.</summary>
    public static TargetSet OfProcesses(IReadOnlyList<int> pids) => new([], null, false, pids);

    /// <summary>A started command whose processes are found as they run (the sampling profiler): ends with the command.</summary>
    public static TargetSet OfCommand(HeldCommand child) => new([], child, false);

    /// <summary>The whole machine: binaries are found while the run goes on (stat without a target); never ends by itself.</summary>
    public static TargetSet SystemWide() => new([], null, true);

    /// <summary>True while at least one traced process (or the child) is alive; --all never ends by itself.</summary>
    public bool AnyTargetAlive()
    {
        if (Child is not null) return !Child.HasExited;
        if (_systemWide || Targets.Any(t => t.AllProcesses)) return true;
        var now = Stopwatch.GetTimestamp();
        if (_aliveCheckedAt != 0 && Stopwatch.GetElapsedTime(_aliveCheckedAt, now) < AliveCheckInterval) return true;
        if (!_pids.Any(IsAlive)) return false;
        _aliveCheckedAt = now;
        return true;
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
