namespace Pyprobe.Python.Sessions;

/// <summary>
/// What every session is made of, once: the memlock limit lifted, the attach mode chosen, the maps it
/// created (closed in reverse order), the ring its records arrive in, the pid-filter map, and the links
/// (closing them detaches: semaphores drop, the 3.11 gate closes). The sessions (trace, audit, call
/// statistics, stat counters) add only their programs and what their records mean.
/// </summary>
public sealed class SessionCore : IDisposable
{
    private readonly List<IDisposable> _links = [];
    private readonly List<BpfMap> _maps = [];
    private bool _disposed;

    private SessionCore(UprobeAttachMode mode) => AttachMode = mode;

    public UprobeAttachMode AttachMode { get; }

    /// <summary>Where records arrive, once <see cref="OpenRing"/> or <see cref="OpenCpuQueues"/> was called.</summary>
    public IRecordReader? Reader { get; private set; }

    /// <param name="mode">Force an attach path; null picks the best this kernel offers.</param>
    /// <param name="needsCookies">The programs tell probes apart by attach cookie (Linux 5.15+).</param>
    public static SessionCore Create(UprobeAttachMode? mode, bool needsCookies = false)
    {
        MemlockLimit.RemoveIfNeeded();
        var chosen = mode ?? KernelFeatures.PreferredAttachMode;
        if (needsCookies && !KernelFeatures.HasAttachCookie)
            throw new NotSupportedException("this kernel lacks BPF attach cookies (Linux 5.15 or newer is required)");
        return new SessionCore(chosen);
    }

    /// <summary>Creates a map the session owns until it is disposed.</summary>
    public BpfMap AddMap(MapSpec spec)
    {
        var map = BpfMap.Create(spec);
        _maps.Add(map);
        return map;
    }

    /// <summary>Creates the ring buffer map (or takes <paramref name="prepared"/>'s, when it is this one) and its reader.</summary>
    /// <param name="wakeupBytes">
    /// The fill at which the session's programs wake the reader (RingOutput's threshold); the reader sleeps while less
    /// is pending (<see cref="RingBufferReader.BatchBytes"/>). 0: the programs use the kernel's own wakeups.
    /// </param>
    public BpfMap OpenRing(string name, uint bytes, PreparedRecordMap? prepared = null, int wakeupBytes = 0)
    {
        if (Reader is not null) throw new InvalidOperationException("a session has one ring");
        BpfMap ring;
        if (prepared?.Take(MapSpec.RingBuffer(name, bytes)) is { } made)
        {
            ring = made.Map;
            _maps.Add(ring);
        }
        else
        {
            ring = AddMap(MapSpec.RingBuffer(name, bytes));
        }
        Reader = new RingBufferReader(ring) { BatchBytes = (uint)wakeupBytes };
        return ring;
    }

    /// <summary>
    /// Creates a queue per possible CPU sharing <paramref name="bytes"/> (<see cref="CpuQueueLayout"/>), with a one-page
    /// ring for the programs' wakeups, and their reader; null when this kernel cannot (no mmapable arrays, or too old
    /// for the compare-exchange the programs reserve with: then the caller opens a ring).
    /// </summary>
    /// <param name="timestampOffset">Where every record's timestamp lies in its payload (the reader merges the CPUs by it).</param>
    /// <param name="wakeupFraction">The fill of a CPU's queue at which its programs wake the reader.</param>
    public (BpfMap Doorbell, CpuQueueMap Queues, int WakeupThreshold)? OpenCpuQueues(string name, uint bytes, uint maxPayloadBytes, int timestampOffset, double wakeupFraction,
        PreparedRecordMap? prepared = null)
    {
        if (Reader is not null) throw new InvalidOperationException("a session has one ring");
        if (CpuQueuesSpec(name, bytes, maxPayloadBytes) is not var (spec, layout)) return null;
        BpfMap queues;
        CpuQueueMappings? mappings = null;
        if (prepared?.Take(spec) is { } made)
        {
            (queues, mappings) = made;
            _maps.Add(queues);
        }
        else
        {
            try
            {
                queues = AddMap(spec);
            }
            catch (Pyprobe.Bpf.Sys.SyscallException)
            {
                return null;
            }
        }
        var doorbell = AddMap(MapSpec.RingBuffer(name + "_wake", 4096));
        var threshold = (uint)Math.Clamp(layout.Capacity * wakeupFraction, CpuQueueLayout.FramedBytes(maxPayloadBytes), layout.Capacity);
        Reader = new CpuQueueReader(mappings ?? CpuQueueMappings.Map(queues, layout), doorbell, timestampOffset) { BatchBytes = threshold };
        return (doorbell, new CpuQueueMap(queues.Fd.Value, layout), (int)threshold);
    }

    /// <summary>The array <see cref="OpenCpuQueues"/> makes and its layout (for <see cref="PreparedRecordMap"/>), or null where this kernel has no CPU queues.</summary>
    public static (MapSpec Spec, CpuQueueLayout Layout)? CpuQueuesSpec(string name, uint bytes, uint maxPayloadBytes)
    {
        if (!KernelFeatures.HasCpuQueues) return null;
        var cpus = PossibleCpus.Count;
        var layout = CpuQueueLayout.Share(bytes, cpus, maxPayloadBytes);
        return (MapSpec.MmapableArray(name, layout.ValueSize, (uint)cpus), layout);
    }

    /// <summary>
    /// A hash of the traced pids, when every target names its processes and the links cannot be trusted to
    /// filter by process; null when some target traces every process of its binary, or when every link is a
    /// uprobe_multi link on a kernel with the pid-filter fix (each link then carries its pid and the kernel runs
    /// the program only in that process: the lookup would cost every event ~50–80 ns for nothing). Perf-event
    /// uprobes, and uprobe_multi on 6.6–6.9 (which filtered by thread), keep the map.
    /// </summary>
    public BpfMap? PidFilter(string name, IReadOnlyList<TraceTarget> targets)
    {
        if (targets.Any(t => t.AllProcesses)) return null;
        if (LinksFilterByProcess) return null;
        var pids = targets.SelectMany(t => t.Pids).Distinct().ToList();
        // Room for processes attached later (a followed command's Pythons, --all's new ones): 5 bytes an entry.
        var filter = AddMap(MapSpec.Hash(name, 4, 1, (uint)Math.Max(pids.Count, 1024)));
        foreach (var pid in pids) filter.Update(BitConverter.GetBytes(pid), [1]);
        return filter;
    }

    /// <summary>Most processes a target's programs compare inline.</summary>
    private const int MaxConstantTgids = 8;

    /// <summary>
    /// The target's processes when its programs, which are its alone, can compare them as constants where the session
    /// must filter by process (<paramref name="filtered"/>: it has a <see cref="PidFilter"/>); else null. The lookup in the
    /// pid hash cost each event 65–80 ns more (bench/run.sh --only breakdown).
    /// </summary>
    public static IReadOnlyList<int>? ConstantTgids(TraceTarget target, bool filtered) =>
        filtered && !target.AllProcesses && target.Pids.Count is > 0 and <= MaxConstantTgids ? target.Pids : null;

    /// <summary>Every link this session makes runs its program only in the process it names (see <see cref="PidFilter"/>).</summary>
    public bool LinksFilterByProcess => AttachMode == UprobeAttachMode.UprobeMulti && KernelFeatures.HasUprobeMultiPidFilterFix;

    /// <summary>Loads <paramref name="bytecode"/> as a uprobe program for this session's attach mode.</summary>
    public BpfProgram Load(string name, ReadOnlyMemory<byte> bytecode) =>
        BpfProgram.Load(new ProgramSpec(name, ProgramType.Kprobe, bytecode, AttachMode.ExpectedAttachType()));

    /// <summary>Attaches a loaded program at <paramref name="sites"/> of <paramref name="target"/>.</summary>
    public void Attach(BpfProgram program, TraceTarget target, IReadOnlyList<UprobeSite> sites) =>
        TargetLinks.Attach(AttachMode, program, target, sites, _links);

    /// <summary>Opens the 3.11 entry gate of <paramref name="target"/> until the session detaches.</summary>
    public void OpenEntryGate(TraceTarget target) => _links.Add(EntryGate.Open(target, AttachMode));

    /// <summary>Keeps <paramref name="link"/> until the session detaches.</summary>
    public void AddLink(IDisposable link) => _links.Add(link);

    /// <summary>
    /// Keeps <paramref name="link"/> until the session detaches, whatever process was being attached when it was made
    /// (<see cref="AttachForProcess"/> does not count it as that process's): for links that serve the whole session.
    /// </summary>
    public void AddSessionLink(IDisposable link) => _sessionLinks.Add(link);

    private readonly List<IDisposable> _sessionLinks = [];

    // Links made for one process attached while the session runs (a followed command's Python, a new one --all found),
    // by pid: released when it has exited, so a run that sees thousands of short Pythons keeps only the live ones' links
    // (each costs the kernel an RCU grace period to close, and detaching them all at the end would take seconds).

    /// <summary>
    /// Attaches for one more process with <paramref name="attach"/>, remembering which links are that process's so
    /// <see cref="ReleaseExited"/> can close them once it is gone. A process attached before has run a new program
    /// (execve keeps the pid): its old program's links are closed first, since probes on the same binary would fire
    /// twice and its old eval-frame hook must be restored (where still pyprobe's) before the new one is written.
    /// </summary>
    public void AttachForProcess(int pid, Action attach)
    {
        if (_processLinks.Remove(pid, out var old)) Release(old);
        var start = _links.Count;
        attach();
        if (_links.Count > start) _processLinks[pid] = _links.GetRange(start, _links.Count - start);
    }

    private readonly Dictionary<int, List<IDisposable>> _processLinks = [];

    /// <summary>
    /// Attaches <paramref name="target"/> with <paramref name="attach"/>: a target of one process through
    /// <see cref="AttachForProcess"/> (its links kept by pid, to give way to those of a new program it runs), others as is.
    /// </summary>
    public void AttachForTarget(TraceTarget target, Action attach)
    {
        if (target is { AllProcesses: false, Pids: [var pid] }) AttachForProcess(pid, attach);
        else attach();
    }

    /// <summary>Closes the links of processes attached by <see cref="AttachForProcess"/> that have exited; what they sent stays readable.</summary>
    public void ReleaseExited(Func<int, bool> alive)
    {
        foreach (var (pid, links) in _processLinks.ToList())
        {
            if (alive(pid)) continue;
            Release(links);
            _processLinks.Remove(pid);
        }
    }

    /// <summary>Closes one process's links (<see cref="AttachForProcess"/>) and forgets them.</summary>
    private void Release(List<IDisposable> links)
    {
        LinkCloser.CloseInOrder(links);
        foreach (var link in links) _links.Remove(link);
    }

    /// <summary>Detaches every probe now while keeping the maps (and the ring) readable.</summary>
    public void Detach()
    {
        LinkCloser.CloseInOrder(_links);
        _links.Clear();
        foreach (var link in _sessionLinks) link.Dispose();
        _sessionLinks.Clear();
        _processLinks.Clear();
        // A closed link runs its program no more once closing returns (the kernel waits out the programs in flight).
        Reader?.ProducersStopped();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Detach();
        Reader?.Dispose();
        for (var i = _maps.Count - 1; i >= 0; i--) _maps[i].Dispose();
    }
}
