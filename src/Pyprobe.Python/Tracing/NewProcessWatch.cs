using System.Diagnostics;
using Pyprobe.Python.Launching;

namespace Pyprobe.Python.Tracing;

/// <summary>
/// For --all: the processes started after the run began that need a target of their own (a CPython whose function
/// events come from _PyEval_EvalFrameDefault is attached, and its hook set, per process; a binary whose USDT probes
/// serve is attached by file and covers its new processes by itself). Looks at /proc at most every 250 ms; a new
/// process that is not (yet) a CPython — its loader may not have mapped libpython — is looked at again until it is
/// 2 s old, as record's --all does.
/// </summary>
public sealed class NewProcessWatch
{
    private static readonly TimeSpan LookInterval = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RecheckFor = TimeSpan.FromSeconds(2);
    private readonly Func<int, TraceTarget?> _resolve;
    private readonly int _self = Environment.ProcessId;
    private HashSet<int> _known;
    private readonly Dictionary<int, long> _pending = [];
    private long _lookedAt;

    /// <summary>Remembers the processes there now: only those started from here on are new.</summary>
    /// <param name="resolve">A new process's target; null when it needs none (not a CPython, or covered by a binary's target); throws while it cannot be read yet.</param>
    public NewProcessWatch(Func<int, TraceTarget?> resolve)
    {
        _resolve = resolve;
        _known = ProcessTree.AllPids(except: _self);
        _lookedAt = Stopwatch.GetTimestamp();
    }

    /// <summary>Targets for the processes found since the last look (none when looked less than 250 ms ago).</summary>
    public IReadOnlyList<TraceTarget> Poll()
    {
        var now = Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(_lookedAt, now) < LookInterval) return [];
        _lookedAt = now;
        var current = ProcessTree.AllPids(except: _self);
        foreach (var pid in current)
            if (!_known.Contains(pid)) _pending.TryAdd(pid, now);
        // Forgetting the gone keeps a reused pid new.
        _known = current;
        var found = new List<TraceTarget>();
        foreach (var (pid, seen) in _pending.ToList())
        {
            try
            {
                if (_resolve(pid) is { } target) found.Add(target);
                _pending.Remove(pid);
            }
            catch (Exception e) when (e is UsdtException or UnsupportedRuntimeException or IOException or UnauthorizedAccessException)
            {
                if (!current.Contains(pid) || Stopwatch.GetElapsedTime(seen, now) > RecheckFor) _pending.Remove(pid);
            }
        }
        return found;
    }
}
