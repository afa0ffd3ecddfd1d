namespace Pyprobe.Python.Stat;

/// <summary>One process in one interval: event counts in the interval and the rates they make.</summary>
/// <param name="Calls">null when function__entry is not counted on this process's version ("n/a").</param>
public sealed record StatRow(int Pid, string Version, string Command, double IntervalSeconds, ulong? Calls, ulong Gc, ulong Imports, ulong Audit)
{
    /// <summary><paramref name="count"/> events of this interval per second, to one decimal (0 for an empty interval).</summary>
    public double PerSecond(ulong count) => IntervalSeconds > 0 ? Math.Round(count / IntervalSeconds, 1) : 0;
}

/// <summary>
/// What stat shows each interval: which Python processes are there (the chosen targets, or every Python on the
/// machine, attaching binaries that started since), and each one's counts since the last interval, from the
/// session's running totals. Counters of processes that are gone are dropped.
/// </summary>
public sealed class StatSampler
{
    private readonly StatSession _session;
    private readonly IReadOnlyList<TraceTarget>? _chosen;
    private readonly StatProcesses _processes = new();
    private readonly HashSet<string> _attachedBinaries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool> _callsCounted = new(StringComparer.Ordinal);
    private readonly Action<StatTarget> _added;
    private readonly Action<PythonProcess, Exception> _failed;
    private readonly Action<PythonProcess> _withoutProbes;
    private Dictionary<int, StatCounts> _previous = [];
    private TimeSpan _last = TimeSpan.Zero;

    /// <param name="chosen">The targets to watch; null for every Python on the machine.</param>
    /// <param name="added">Told of each binary the counters were attached to.</param>
    /// <param name="failed">Told of each binary found running that could not be attached to.</param>
    /// <param name="withoutProbes">Machine-wide: told once of each Python process found whose interpreter has no probes.</param>
    public StatSampler(StatSession session, IReadOnlyList<TraceTarget>? chosen, Action<StatTarget> added, Action<PythonProcess, Exception> failed,
        Action<PythonProcess> withoutProbes)
    {
        _session = session;
        _chosen = chosen;
        _added = added;
        _failed = failed;
        _withoutProbes = withoutProbes;
    }

    /// <summary>Binaries the counters are attached to.</summary>
    public int BinaryCount => _attachedBinaries.Count;

    /// <summary>When the last interval ended (time since the run started).</summary>
    public TimeSpan LastSample => _last;

    /// <summary>Attaches the counters to the chosen targets, or to every Python binary running now.</summary>
    public void AttachAll()
    {
        if (_chosen is null) ScanMachine();
        else foreach (var t in _chosen) Add(t);
        foreach (var t in _session.Targets) _callsCounted[t.Target.AttachPath] = t.CountsCalls;
    }

    /// <summary>One row per process for the interval since the last sample, ending at <paramref name="now"/>.</summary>
    public IReadOnlyList<StatRow> Sample(TimeSpan now)
    {
        List<PythonProcess> rowsFor;
        if (_chosen is null)
        {
            rowsFor = ScanMachine();
            foreach (var t in _session.Targets) _callsCounted[t.Target.AttachPath] = t.CountsCalls;
        }
        else
        {
            var running = _chosen.Any(t => t.AllProcesses) ? _processes.Scan() : [];
            rowsFor = [];
            foreach (var t in _chosen)
            {
                if (t.AllProcesses) rowsFor.AddRange(running.Where(p => SameFile(p.HostPath, t.AttachPath)));
                else foreach (var pid in t.Pids)
                        if ((_processes.Get(pid) ?? StatProcesses.Named(pid, t)) is { } p) rowsFor.Add(p with { HostPath = t.AttachPath });
            }
        }

        var counts = _session.Read();
        var dt = (now - _last).TotalSeconds;
        var rows = new List<StatRow>();
        foreach (var p in rowsFor.DistinctBy(p => p.Pid).OrderBy(p => p.Pid))
        {
            var cur = counts.GetValueOrDefault(p.Pid);
            var prev = _previous.GetValueOrDefault(p.Pid);
            var calls = _callsCounted.GetValueOrDefault(p.HostPath) || _session.Targets.Any(t => t.CountsCalls && SameFile(t.Target.AttachPath, p.HostPath));
            rows.Add(new StatRow(p.Pid, p.Version, p.CommandLine, dt, calls ? cur.Calls - prev.Calls : null, cur.Gc - prev.Gc, cur.Imports - prev.Imports, cur.Audit - prev.Audit));
        }
        var alive = rowsFor.Select(p => p.Pid).ToHashSet();
        foreach (var pid in counts.Keys.Where(k => !alive.Contains(k) && !IsAlive(k))) _session.Forget(pid);
        _previous = counts;
        _last = now;
        return rows;
    }

    private void Add(TraceTarget t)
    {
        var added = _session.Add(t);
        _attachedBinaries.Add(t.AttachPath);
        _added(added);
    }

    /// <summary>Every Python with probes running now, their binaries attached; those without probes told of once.</summary>
    private List<PythonProcess> ScanMachine()
    {
        var running = _processes.Scan();
        AttachNewBinaries(running);
        foreach (var p in _processes.NewWithoutProbes) _withoutProbes(p);
        return running;
    }

    private void AttachNewBinaries(List<PythonProcess> running)
    {
        foreach (var p in running)
        {
            if (_attachedBinaries.Contains(p.HostPath)) continue;
            try
            {
                Add(StatProcesses.SystemWideTarget(p));
            }
            catch (Exception e) when (e is Usdt.UsdtException or Bpf.Sys.SyscallException or IOException or InvalidOperationException)
            {
                _attachedBinaries.Add(p.HostPath);
                _failed(p, e);
            }
        }
    }

    private static bool SameFile(string a, string b)
    {
        if (a == b) return true;
        static string Real(string p)
        {
            try { return new FileInfo(p).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(p); }
            catch (IOException) { return p; }
        }
        return Real(a) == Real(b);
    }

    private static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");
}
