using Pyprobe.Python.Processes;
using System.Diagnostics;
using Pyprobe.Bpf.Sys;
using Pyprobe.Python.Analysis;
using Pyprobe.Python.Sampling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stat;
using Pyprobe.Usdt;

namespace Pyprobe.Python.Metrics;

/// <summary>
/// The exporter's kernel side, on its own thread: finds the Python processes in scope as they come and go, keeps
/// probe programs on their interpreters and the stack sampler on them, drains the rings every 50 ms and, every
/// refresh, reads the maps into an immutable <see cref="FleetSnapshot"/>. Readers only ever take the latest
/// snapshot (<see cref="Latest"/>); nothing they do can block this thread.
/// </summary>
public sealed class FleetCollector : IDisposable
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromSeconds(1);
    private const int DrainMilliseconds = 50;

    private readonly FleetOptions _options;
    private readonly Action<string> _note;
    private readonly StatProcesses _probed = new();
    private readonly Dictionary<string, ProbeAttachment?> _attachments = new(StringComparer.Ordinal);
    private readonly Dictionary<int, (string Version, string Command)> _processes = [];
    private readonly Dictionary<int, string> _probedPids = [];
    private readonly EventCounts _events = new();
    private readonly StackSampler? _sampler;
    private readonly SampledProcesses? _sampled;
    private readonly CodeObjectResolver _resolver = new();
    private readonly CpuSampleCounts _cpu;
    private readonly Dictionary<int, StickyTopN<(string, string, int?)>> _topFunctions = [];
    private readonly Dictionary<int, StickyTopN<(string, string)>> _topCpu = [];
    private readonly Dictionary<int, StickyTopN<string>> _topAudit = [];
    // Each process's memory and task reader, kept open while it lives (--asyncio); null where it cannot be read.
    private readonly Dictionary<int, (CPythonProcess Process, Asyncio.AsyncTaskReader Tasks)?> _taskReaders = [];
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _thread;
    private FleetSnapshot _latest = FleetSnapshot.Empty;
    private long _sequence;
    private Exception? _failure;

    private FleetCollector(FleetOptions options, Action<string> note, StackSampler? sampler)
    {
        _options = options;
        _note = note;
        _sampler = sampler;
        _sampled = sampler is null ? null : new SampledProcesses(options.Scope);
        _cpu = new CpuSampleCounts(_resolver);
        _thread = new Thread(Run) { IsBackground = true, Name = "pyprobe collector" };
    }

    /// <summary>The last snapshot taken; never null, never changed after it was published.</summary>
    public FleetSnapshot Latest => Volatile.Read(ref _latest);

    /// <summary>Why the collector thread stopped, if it failed.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Attaches to what is in scope now, takes the first snapshot and starts the collector thread.</summary>
    /// <param name="note">Told (from the collector thread too) about processes and interpreters that are left out, and why, once each.</param>
    public static FleetCollector Start(FleetOptions options, Action<string> note)
    {
        StackSampler? sampler = null;
        try
        {
            if (options.SampleRate > 0) sampler = StackSampler.Start(StackSamplerOptions.InnermostFrame(options.SampleRate));
        }
        catch (Exception e) when (e is SyscallException or IOException or Bpf.Btf.BtfException)
        {
            note($"CPU sampling is off ({e.Message}); pyprobe_cpu_samples_total will be missing");
        }
        var collector = new FleetCollector(options, note, sampler);
        try
        {
            collector.Poll();
            collector.Publish();
        }
        catch
        {
            collector.Dispose();
            throw;
        }
        collector._thread.Start();
        return collector;
    }

    private void Run()
    {
        var clock = Stopwatch.StartNew();
        var nextPoll = PollEvery;
        var nextSnapshot = _options.RefreshInterval;
        try
        {
            while (!_stop.Wait(DrainMilliseconds))
            {
                Drain();
                var now = clock.Elapsed;
                if (now >= nextPoll)
                {
                    Poll();
                    nextPoll = now + PollEvery;
                }
                if (now >= nextSnapshot)
                {
                    Publish();
                    nextSnapshot = now + _options.RefreshInterval;
                }
            }
        }
        catch (Exception e)
        {
            Volatile.Write(ref _failure, e);
            _note($"the collector stopped: {e.Message}");
        }
    }

    private void Drain()
    {
        foreach (var attachment in _attachments.Values)
        {
            attachment?.Events?.Drain(_events.Add);
            attachment?.Calls?.DrainNames();
        }
        _sampler?.Reader.Drain(_cpu.Add);
    }

    /// <summary>Looks for processes that started or exited, attaching to interpreters not seen before.</summary>
    private void Poll()
    {
        var alive = new Dictionary<int, (string Version, string Command)>();
        if (_sampler is not null)
        {
            var (added, removed) = _sampled!.Poll((pid, reason) => _note(SampledProcesses.NotSampled(pid, reason)));
            foreach (var pid in removed)
            {
                _sampler.RemoveProcess(pid);
                _resolver.Remove(pid);
            }
            foreach (var process in added)
            {
                try
                {
                    _sampler.AddProcess(process.Pid, StackWalkConfigs.For(process));
                    _resolver.Add(process);
                }
                catch (Exception e) when (e is UnsupportedRuntimeException or Bpf.Btf.BtfException or SyscallException)
                {
                    _note(SampledProcesses.NotSampled(process.Pid, e.Message));
                    process.Dispose();
                }
            }
            foreach (var pid in _sampled.Sampled.Keys)
                alive[pid] = _processes.TryGetValue(pid, out var known) ? known : (VersionOf(pid), ProcessCommandLine.Of(pid));
        }
        foreach (var p in ProbedInScope())
        {
            alive[p.Pid] = _processes.TryGetValue(p.Pid, out var known) ? known : (p.Version, p.CommandLine);
            _probedPids[p.Pid] = p.HostPath;
            var key = _options.Scope is SampleScope.Processes ? $"{p.HostPath}\n{p.Pid}" : p.HostPath;
            if (_attachments.ContainsKey(key)) continue;
            var target = _options.Scope is SampleScope.Processes
                ? new TraceTarget(p.HostPath, p.DisplayPath, p.Binary, [p.Pid], p.ParsedVersion)
                : StatProcesses.SystemWideTarget(p);
            try
            {
                _attachments[key] = ProbeAttachment.Attach(target, _options.TimeCalls);
            }
            catch (Exception e) when (e is UsdtException or SyscallException or IOException or InvalidOperationException)
            {
                _attachments[key] = null;
                _note($"cannot attach to {p.DisplayPath}: {e.Message}");
            }
        }
        foreach (var pid in _processes.Keys.Where(pid => !alive.ContainsKey(pid)).ToList()) Forget(pid);
        foreach (var (pid, info) in alive) _processes[pid] = info;
    }

    private IEnumerable<PythonProcess> ProbedInScope()
    {
        switch (_options.Scope)
        {
            case SampleScope.Processes chosen:
                foreach (var pid in chosen.Pids)
                    if (_probed.Get(pid) is { } p) yield return p;
                break;
            case SampleScope.Machine { Interpreter: null }:
                foreach (var p in _probed.Scan()) yield return p;
                break;
            case SampleScope.Machine { Interpreter: { } path }:
                foreach (var p in _probed.Scan())
                    if (SameFile(p.HostPath, path) || SameFile($"/proc/{p.Pid}/exe", path)) yield return p;
                break;
        }
    }

    private void Forget(int pid)
    {
        _processes.Remove(pid);
        if (_taskReaders.Remove(pid, out var reader)) reader?.Process.Dispose();
        _events.Forget(pid);
        _cpu.Forget(pid);
        _topFunctions.Remove(pid);
        _topCpu.Remove(pid);
        _topAudit.Remove(pid);
        if (_probedPids.Remove(pid, out var hostPath))
        {
            foreach (var attachment in _attachments.Values) attachment?.Calls?.Forget(pid);
            if (_options.Scope is SampleScope.Processes && _attachments.Remove($"{hostPath}\n{pid}", out var own)) own?.Dispose();
        }
    }

    /// <summary>Reads everything into a new snapshot and makes it the one scrapes see.</summary>
    private void Publish()
    {
        var started = Stopwatch.GetTimestamp();
        Drain();
        var functions = new Dictionary<int, List<FunctionStats>>();
        var withFunctions = new HashSet<int>();
        foreach (var attachment in _attachments.Values)
        {
            if (attachment?.Calls is not { } calls) continue;
            foreach (var f in calls.Snapshot().Functions)
            {
                if (!functions.TryGetValue(f.Pid, out var list)) functions[f.Pid] = list = [];
                list.Add(f);
            }
        }
        var processes = new List<ProcessMetrics>(_processes.Count);
        foreach (var (pid, info) in _processes.OrderBy(p => p.Key))
        {
            var attachment = _probedPids.TryGetValue(pid, out var hostPath) ? AttachmentOf(hostPath, pid) : null;
            var hasCalls = attachment?.Calls is not null;
            var hasEvents = attachment?.Events is not null;
            processes.Add(new ProcessMetrics(pid, info.Version, info.Command,
                hasCalls ? Functions(pid, functions.GetValueOrDefault(pid) ?? []) : null,
                Cpu(pid),
                hasEvents && attachment!.Has("gc__start") ? _events.Gc(pid) : null,
                hasEvents && attachment!.Has("import__find__load__start") ? _events.Imports(pid) : null,
                hasEvents && attachment!.Has("audit") ? Audit(pid) : null,
                _options.AsyncioTasks ? PendingTasks(pid) : null));
        }
        var eventsLost = _attachments.Values.Aggregate(0UL, (sum, a) => sum + (a?.Events?.Lost ?? 0));
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        Volatile.Write(ref _latest, new FleetSnapshot(++_sequence, DateTimeOffset.UtcNow, seconds, processes, eventsLost,
            _sampler?.Lost ?? 0, _attachments.Values.Count(a => a is not null), _sampler is null ? 0 : _options.SampleRate));
    }

    /// <summary>The process's pending asyncio tasks now, or null where its memory cannot be read as a known CPython's.</summary>
    private int? PendingTasks(int pid)
    {
        if (!_taskReaders.TryGetValue(pid, out var reader))
        {
            try
            {
                var process = CPythonProcess.Attach(pid);
                try { reader = (process, new Asyncio.AsyncTaskReader(process, new Stacks.StackReader(process))); }
                catch { process.Dispose(); throw; }
            }
            catch (Exception e) when (e is IOException or UnsupportedRuntimeException or UsdtException) { reader = null; }
            _taskReaders[pid] = reader;
        }
        if (reader is not { } r) return null;
        try { return r.Tasks.CountPending(); }
        catch (IOException) { return null; } // ProcessMemoryException included: it is going away
    }

    private ProbeAttachment? AttachmentOf(string hostPath, int pid) =>
        _attachments.GetValueOrDefault(_options.Scope is SampleScope.Processes ? $"{hostPath}\n{pid}" : hostPath);

    private List<FunctionCalls> Functions(int pid, List<FunctionStats> stats)
    {
        if (!_topFunctions.TryGetValue(pid, out var top)) _topFunctions[pid] = top = new(_options.TopFunctions);
        // Snapshot() lists the most total time first, then the most calls.
        var chosen = top.Choose(stats.Select(f => (f.Funcname, f.Filename, f.Lineno)));
        var rows = new List<FunctionCalls>();
        var rest = new List<FunctionStats>();
        foreach (var f in stats)
        {
            if (chosen.Contains((f.Funcname, f.Filename, f.Lineno))) rows.Add(new FunctionCalls(f.Funcname, f.Filename, f.Lineno, f.Count, Durations(f)));
            else rest.Add(f);
        }
        if (rest.Count > 0)
            rows.Add(new FunctionCalls(FunctionCalls.OtherName, "", null, rest.Aggregate(0UL, (s, f) => s + f.Count), DurationHistogram.Sum(rest.Select(Durations))));
        return rows;
    }

    private static DurationHistogram? Durations(FunctionStats f) =>
        f.HasTimes ? DurationHistogram.FromLogLinear(f.Histogram, f.TimedCount, f.TotalNs ?? 0) : null;

    private List<CpuSamples> Cpu(int pid)
    {
        var counts = _cpu.Of(pid);
        if (!_topCpu.TryGetValue(pid, out var top)) _topCpu[pid] = top = new(_options.TopFunctions);
        var chosen = top.Choose(counts.OrderByDescending(c => c.Value).Select(c => c.Key));
        var rows = new List<CpuSamples>();
        ulong rest = 0;
        foreach (var (key, n) in counts)
        {
            if (chosen.Contains(key)) rows.Add(new CpuSamples(key.Function, key.File, n));
            else rest += n;
        }
        if (rest > 0) rows.Add(new CpuSamples(FunctionCalls.OtherName, "", rest));
        return rows;
    }

    private List<AuditCount> Audit(int pid)
    {
        var counts = _events.Audit(pid);
        if (!_topAudit.TryGetValue(pid, out var top)) _topAudit[pid] = top = new(_options.TopFunctions);
        var chosen = top.Choose(counts.OrderByDescending(c => c.Value).Select(c => c.Key));
        var rows = new List<AuditCount>();
        ulong rest = 0;
        foreach (var (name, n) in counts)
        {
            if (chosen.Contains(name)) rows.Add(new AuditCount(name, n));
            else rest += n;
        }
        if (rest > 0) rows.Add(new AuditCount(FunctionCalls.OtherName, rest));
        return rows;
    }

    private string VersionOf(int pid)
    {
        try
        {
            using var process = CPythonProcess.Attach(pid);
            return process.Binary.Version.ToString();
        }
        catch (Exception e) when (e is UnsupportedRuntimeException or UsdtException or IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }

    private static bool SameFile(string a, string b)
    {
        static string Real(string p)
        {
            try { return new FileInfo(p).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(p); }
            catch (IOException) { return p; }
        }
        return a == b || Real(a) == Real(b);
    }

    /// <summary>Stops the collector thread, then detaches everything.</summary>
    public void Dispose()
    {
        _stop.Set();
        if (_thread.IsAlive) _thread.Join();
        foreach (var attachment in _attachments.Values) attachment?.Dispose();
        foreach (var reader in _taskReaders.Values) reader?.Process.Dispose();
        _sampler?.Dispose();
        _resolver.Dispose();
        _stop.Dispose();
    }
}
