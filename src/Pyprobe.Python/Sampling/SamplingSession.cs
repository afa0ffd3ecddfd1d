using Pyprobe.Python.Profiling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// A recording as the run lifecycle drives it: the kernel sampler, the processes it follows (found and dropped
/// while it runs), the code-object resolver and the profile being added up. Read-only towards the targets.
/// </summary>
public sealed class SamplingSession : ILiveSession
{
    private static readonly TimeSpan FastPolls = TimeSpan.FromSeconds(2);
    private readonly StackSampler _sampler;
    private readonly SampledProcesses _processes;
    private readonly CodeObjectResolver _resolver = new();
    private readonly bool _threadRoots;
    private ProfileRecorder _recorder;
    private ulong _lostBefore;
    private readonly Dictionary<int, string> _versions = [];
    private readonly List<int> _everSampled = [];
    private readonly System.Diagnostics.Stopwatch _sinceStart = System.Diagnostics.Stopwatch.StartNew();
    private readonly Action<int, string>? _unsupported;
    private TimeSpan _lastPoll = TimeSpan.MinValue;
    private bool _detached;

    private SamplingSession(StackSampler sampler, SampledProcesses processes, bool threadRoots, Action<int, string>? unsupported)
    {
        _sampler = sampler;
        _processes = processes;
        _threadRoots = threadRoots;
        _recorder = new ProfileRecorder(_resolver, threadRoots);
        _unsupported = unsupported;
    }

    public string AttachModeName => $"CPU-clock perf events at {_sampler.Options.Frequency} Hz";

    public StackSamplerOptions Options => _sampler.Options;

    /// <summary>Processes sampled at some point, in the order they were found.</summary>
    public IReadOnlyList<int> Pids => _everSampled;

    /// <summary>Starts sampling and adds the processes of <paramref name="scope"/> found now.</summary>
    /// <param name="unsupported">Told once about each Python process whose runtime cannot be read (pid, one-line reason).</param>
    public static SamplingSession Start(SampleScope scope, StackSamplerOptions options, bool threadRoots, Action<int, string>? unsupported = null)
    {
        var sampler = StackSampler.Start(options);
        try
        {
            var session = new SamplingSession(sampler, new SampledProcesses(scope), threadRoots, unsupported);
            session.PollProcesses(force: true);
            return session;
        }
        catch
        {
            sampler.Dispose();
            throw;
        }
    }

    /// <summary>Looks for new and exited processes: often at first (a started command becomes Python after its exec), then twice a second.</summary>
    public void PollProcesses(bool force = false)
    {
        if (_detached) return;
        var now = _sinceStart.Elapsed;
        var interval = now < FastPolls ? TimeSpan.FromMilliseconds(20) : TimeSpan.FromMilliseconds(500);
        if (!force && now - _lastPoll < interval) return;
        _lastPoll = now;
        var (added, removed) = _processes.Poll(_unsupported);
        foreach (var pid in removed) _sampler.RemoveProcess(pid);
        foreach (var process in added)
        {
            _sampler.AddProcess(process.Pid, StackWalkConfigs.For(process));
            _resolver.Add(process);
            _versions[process.Pid] = process.Binary.Version.ToString();
            _everSampled.Add(process.Pid);
        }
    }

    /// <summary>Adds what the ring holds to the profile; returns how many samples that was.</summary>
    public int Drain() => _sampler.Reader.Drain(record => _recorder.Add(record));

    public void Wait(int milliseconds) => _sampler.Reader.WaitForData(milliseconds);

    public void Wake() => _sampler.Reader.Interrupt();

    /// <summary>Stops sampling; what was sampled stays readable (drain it, then build the profile).</summary>
    public void Detach()
    {
        if (_detached) return;
        _detached = true;
        _sampler.StopSampling();
    }

    /// <summary>Frames whose code object could not be read (freed before it was named, or the process exited).</summary>
    public long UnknownFrames => _resolver.UnknownFrames;

    /// <summary>The samples since the last call (or the start), and a fresh profile for the next interval.</summary>
    public StackProfile TakeInterval(DateTimeOffset start, TimeSpan duration, ProfileMode mode)
    {
        var lost = _sampler.Lost;
        var profile = Build(start, duration, mode, (long)(lost - _lostBefore));
        _lostBefore = lost;
        _recorder = new ProfileRecorder(_resolver, _threadRoots);
        return profile;
    }

    public StackProfile Build(DateTimeOffset start, TimeSpan duration, ProfileMode mode) => Build(start, duration, mode, (long)(_sampler.Lost - _lostBefore));

    private StackProfile Build(DateTimeOffset start, TimeSpan duration, ProfileMode mode, long lost)
    {
        var versions = _everSampled.Select(pid => _versions[pid]).Distinct().ToList();
        return _recorder.Build(_everSampled.Order().ToList(), string.Join(", ", versions), _sampler.Options.Frequency, mode, start, duration, lost);
    }

    public void Dispose()
    {
        _sampler.Dispose();
        _resolver.Dispose();
    }
}
