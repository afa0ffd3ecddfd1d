using Pyprobe.Python.Processes;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Sessions;
using Pyprobe.Python.Stacks;
using Pyprobe.Python.Threads;
using Pyprobe.Usdt;

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
    private readonly HostThreadNames _threadNames = new();
    private readonly SampledTaskChains? _taskChains;
    private readonly Asyncio.WaitingTaskCensus? _taskWaits;
    private readonly bool _threadRoots;
    private ProfileRecorder _recorder;
    private ulong _lostBefore;
    private readonly Dictionary<int, string> _versions = [];
    private readonly List<int> _everSampled = [];
    private readonly System.Diagnostics.Stopwatch _sinceStart = System.Diagnostics.Stopwatch.StartNew();
    private readonly Action<int, string>? _unsupported;
    private TimeSpan _lastPoll = TimeSpan.MinValue;
    private bool _detached;
    private ulong? _stoppedNs;
    // Wall clock: one set of off-CPU spans for the whole session, so a span open across intervals is kept.
    private readonly OffCpuSpans? _offCpuSpans;
    private readonly NativeStacks? _native;

    private SamplingSession(StackSampler sampler, SampledProcesses processes, bool threadRoots, Action<int, string>? unsupported)
    {
        _sampler = sampler;
        _processes = processes;
        _threadRoots = threadRoots;
        _taskChains = sampler.Options.RunningTask ? new SampledTaskChains() : null;
        // Wall clock: the tasks suspended in an await spend no thread's time, so no kernel sample sees them.
        _taskWaits = sampler.Options.RunningTask && sampler.Options.OffCpu ? new Asyncio.WaitingTaskCensus(sampler.Options.Frequency, threadRoots) : null;
        _offCpuSpans = sampler.Options.OffCpu ? new OffCpuSpans(sampler.Options.Frequency) : null;
        _native = sampler.Options.NativeStackBytes > 0 ? new NativeStacks() : null;
        _recorder = NewRecorder();
        _unsupported = unsupported;
    }

    public string AttachModeName => _sampler.Options.OffCpu
        ? $"CPU-clock perf events at {_sampler.Options.Frequency} Hz and sched_switch (wall clock)"
        : $"CPU-clock perf events at {_sampler.Options.Frequency} Hz";

    /// <summary>Wall clock: stacks walked as sampled threads left their CPU.</summary>
    public long SwitchOuts => _recorder.SwitchOuts;

    public StackSamplerOptions Options => _sampler.Options;

    /// <summary>With <c>--native</c>: the samples whose native stacks were merged in, and how their unwinding ended.</summary>
    public NativeStacks? Native => _native;

    /// <summary>With <c>--native</c>: native stack copies the ring could not take (their samples keep their Python frames).</summary>
    public ulong NativeLost => _sampler.NativeLost;

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

    /// <summary>
    /// Looks for new and exited processes: often at first where processes can appear (a started command becomes Python
    /// after its exec), then twice a second; -p processes only twice a second (each look reads /proc files).
    /// </summary>
    public void PollProcesses(bool force = false)
    {
        if (_detached) return;
        var now = _sinceStart.Elapsed;
        var interval = now < FastPolls && _processes.FindsNewProcesses ? TimeSpan.FromMilliseconds(20) : TimeSpan.FromMilliseconds(500);
        if (!force && now - _lastPoll < interval) return;
        _lastPoll = now;
        var (added, removed) = _processes.Poll(_unsupported);
        foreach (var pid in removed)
        {
            _sampler.RemoveProcess(pid);
            _threadNames.Remove(pid);
            _taskChains?.Remove(pid);
            _taskWaits?.Remove(pid);
            _native?.Remove(pid);
            _recorder.CloseSpans(KernelClock.NowNs, pid);
        }
        foreach (var process in added)
        {
            StackWalkConfig config;
            try { config = WalkConfig(process); }
            catch (UnsupportedRuntimeException e)
            {
                // One process the walk cannot follow leaves the rest of the recording alone.
                _unsupported?.Invoke(process.Pid, e.Message);
                process.Dispose();
                continue;
            }
            if (_threadRoots) _threadNames.Add(process); // before the sleeping threads' spans name their roots
            var sleeping = SleepingThreads(process);
            var asleepAt = KernelClock.NowNs;
            foreach (var thread in sleeping) _recorder.OpenSpan(process.Pid, thread.Tid, asleepAt, thread.Frames);
            _native?.Add(process); // before its first sample
            _sampler.AddProcess(process.Pid, config);
            _resolver.Add(process);
            _versions[process.Pid] = process.Binary.Version.ToString();
            _everSampled.Add(process.Pid);
        }
    }

    /// <summary>
    /// Wall clock: threads asleep when their process is found left their CPU before the kernel could see them go,
    /// so their stacks are read from user space (/proc/PID/mem). Their spans open right before the kernel starts
    /// looking at the process, so every record of theirs comes later than the span's start.
    /// </summary>
    private List<ThreadStack> SleepingThreads(CPythonProcess process)
    {
        if (!_sampler.Options.OffCpu) return [];
        try
        {
            // The reader gives the host's ids, as the kernel's records carry them.
            var threads = new StackReader(process).ReadAll();
            return threads.Where(t => t.Tid > 0 && TaskState.IsAsleep(process.Pid, t.Tid)).ToList();
        }
        catch (IOException) { return []; } // ProcessMemoryException included: the process is going away
        catch (UnauthorizedAccessException) { return []; }
    }

    /// <summary>Adds what the ring holds to the profile; returns how many samples that was.</summary>
    public int Drain()
    {
        _taskChains?.NewPass();
        _recorder.SettleHeld();
        var drained = _sampler.Reader.Drain(record => _recorder.Add(record));
        _taskWaits?.TakeIfDue(_recorder.AddWaitingTask);
        return drained;
    }

    /// <summary>Wall clock with <c>--tasks</c>: the censuses of every task taken, for the waiting ones' time (<see cref="Asyncio.WaitingTaskCensus"/>).</summary>
    public long TaskCensuses => _taskWaits?.Taken ?? 0;

    public void Wait(int milliseconds) => _sampler.Reader.WaitForData(milliseconds);

    public void Wake() => _sampler.Reader.Interrupt();

    /// <summary>Stops sampling; what was sampled stays readable (drain it, then build the profile).</summary>
    public void Detach()
    {
        if (_detached) return;
        _detached = true;
        _taskWaits?.TakeIfDue(_recorder.AddWaitingTask, last: true);
        _sampler.StopSampling();
        _stoppedNs = KernelClock.NowNs;
    }

    /// <summary>Frames whose code object could not be read (freed before it was named, or the process exited).</summary>
    public long UnknownFrames => _resolver.UnknownFrames;

    /// <summary>The samples since the last call (or the start), and a fresh profile for the next interval.</summary>
    public StackProfile TakeInterval(DateTimeOffset start, TimeSpan duration, ProfileMode mode)
    {
        var lost = _sampler.Lost;
        var profile = Build(start, duration, mode, (long)(lost - _lostBefore));
        _lostBefore = lost;
        _recorder = NewRecorder();
        return profile;
    }

    /// <summary>Whether every process sampled so far tells whether its threads hold the GIL (<see cref="StackSamplerOptions.GilState"/>).</summary>
    public bool GilStateKnown { get; private set; } = true;

    private StackWalkConfig WalkConfig(CPythonProcess process) => WithRunningTask(process, GilWalkConfig(process));

    /// <summary>
    /// record --tasks: where the thread state names the asyncio task it runs (3.14+: from the <c>_asyncio</c> module's
    /// debug section, or the version's layout where asyncio is not loaded yet), the walk sends it; before 3.14, where the
    /// running task is kept in a dict the kernel cannot look up, the walk sends the outermost coroutine on the stack and
    /// the task is found by it (<see cref="Asyncio.TasksByCoroutine"/>).
    /// </summary>
    private StackWalkConfig WithRunningTask(CPythonProcess process, StackWalkConfig config)
    {
        if (_taskChains is null) return config;
        var layout = Asyncio.CoroutineLayout.For(process.Binary.Version)
            ?? throw new UnsupportedRuntimeException($"record --tasks: reading asyncio tasks is not supported on CPython {process.Binary.Version}");
        // The walk notes the outermost coroutine on every version: where the task's own frames start.
        var withCoroutine = layout.FrameGenerator is int generator ? config with { RunningCoroutine = (uint)generator }
            : process.Layout.Frame.Owner is int owner && layout.InlineFrame is int inline ? config with { RunningCoroutine = (uint)owner, CoroutineFrame = (uint)inline }
            : throw new UnsupportedRuntimeException($"record --tasks: CPython {process.Binary.Version}'s frames do not say which are coroutines'");
        var debug = Asyncio.TaskRegistry.DebugOffsets(process);
        if ((debug?.ThreadRunningTask ?? layout.ThreadRunningTask) is int runningTask)
        {
            var taskName = debug?.TaskName ?? layout.TaskName;
            _taskChains.AddByThreadState(process, taskName);
            _taskWaits?.Add(process);
            return withCoroutine with { RunningTask = (uint)runningTask, TaskName = (uint)taskName };
        }
        _taskChains.AddByCoroutine(process);
        _taskWaits?.Add(process);
        return withCoroutine with { TaskName = (uint)layout.TaskName, TaskCoro = (uint)layout.TaskCoro, FrameLocals = (uint)process.Layout.Frame.LocalsPlus };
    }

    private StackWalkConfig GilWalkConfig(CPythonProcess process)
    {
        var options = _sampler.Options;
        if (options.GilOnly || !options.GilState) return StackWalkConfigs.For(process, gilState: options.GilOnly);
        try { return StackWalkConfigs.For(process, gilState: true); }
        catch (UnsupportedRuntimeException)
        {
            // The GIL's share is extra: a process whose version does not say where the GIL is kept is sampled without it.
            GilStateKnown = false;
            return StackWalkConfigs.For(process);
        }
    }

    private ProfileRecorder NewRecorder() => new(_resolver, _threadRoots, _threadNames.Name, _offCpuSpans, _sampler.Options.GilOnly, _native, _taskChains);

    /// <summary>The whole recording (or what is left after the last interval); wall clock: threads still off their CPU were so until it stopped.</summary>
    public StackProfile Build(DateTimeOffset start, TimeSpan duration, ProfileMode mode)
    {
        _recorder.CloseSpans(_stoppedNs ?? KernelClock.NowNs);
        return Build(start, duration, mode, (long)(_sampler.Lost - _lostBefore));
    }

    /// <remarks>Off-CPU spans open at an interval's end carry on: each counts in the interval it ends in.</remarks>
    private StackProfile Build(DateTimeOffset start, TimeSpan duration, ProfileMode mode, long lost)
    {
        var versions = _everSampled.Select(pid => _versions[pid]).Distinct().ToList();
        return _recorder.Build(_everSampled.Order().ToList(), string.Join(", ", versions), _sampler.Options.Frequency, mode, start, duration, lost);
    }

    public void Dispose()
    {
        _sampler.Dispose();
        _resolver.Dispose();
        _native?.Dispose();
    }
}
