using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Processes;
using Pyprobe.Python.Sessions;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.Launching;

/// <summary>Where a followed process was stopped for attaching: its interpreter exists, no Python code has run.</summary>
/// <param name="Pid">The process, stopped (SIGSTOP); whoever receives it sends SIGCONT.</param>
/// <param name="At">The function it stopped at: PyEval_EvalCode (nothing run yet) or _PyEval_EvalFrameDefault (its first activation, entered from C).</param>
public sealed record StoppedInterpreter(int Pid, string At);

/// <summary>
/// Follows a started command and its descendants (a shell script, env, make, a virtualenv's python, a loader)
/// and stops each one that runs CPython where its interpreter exists but has run no Python code: the probes
/// attach then, the eval-frame hook can be set (3.11+), and nothing is missed. How: kernel programs follow forks
/// and stop every followed process at its execve (raw tracepoints); one that maps a CPython runtime gets a stopper
/// uprobe on its first code execution (PyEval_EvalCode, and _PyEval_EvalFrameDefault in case that comes first);
/// one that needs the dynamic loader to map it (a shared libpython, a python run by ld.so) gets a stopper on the
/// loader's _dl_debug_state, which the loader calls when the program's libraries are mapped. Every other process
/// is continued at once (a stop costs it well under a millisecond). Read-only towards the processes.
/// </summary>
public sealed class ProcessFollower : IDisposable
{
    private const int LoaderStopsBeforeGivingUp = 2;
    private readonly OwnedResources _owned;
    private readonly BpfMap _followed, _armed, _forked;
    // The stoppers load when a followed process first needs one: a `-p` run that sees no exec never does (two program
    // loads off every launch). The follower's thread alone uses them.
    private readonly Dictionary<string, int> _fds;
    private BpfProgram? _stopper, _afterForkStopper;
    // One system-wide PyOS_AfterFork_Child probe per Python binary seen (its program stops only listed children).
    private readonly Dictionary<string, IUprobeLink> _afterForkLinks = [];
    private readonly RingBufferReader _reader;
    private readonly Dictionary<int, Followed> _states = [];
    private readonly HashSet<int> _stopped = [];
    private readonly UprobeAttachMode _mode = KernelFeatures.PreferredAttachMode;
    // Found, still stopped, not yet handed out by Next or Pump.
    private readonly Queue<StoppedInterpreter> _ready = new();
    private readonly RecordHandler _onRecord;

    private sealed class Followed(IUprobeLink link, bool atInterpreter)
    {
        public IUprobeLink Link { get; } = link;
        public bool AtInterpreter { get; } = atInterpreter;
        public int LoaderStops { get; set; }
        public string? Binary { get; init; }
    }

    private ProcessFollower(OwnedResources owned, BpfMap followed, BpfMap armed, BpfMap forked, BpfMap ring, Dictionary<string, int> fds)
    {
        _owned = owned;
        _followed = followed;
        _armed = armed;
        _forked = forked;
        _fds = fds;
        _reader = new RingBufferReader(ring);
        _onRecord = OnRecord;
    }

    /// <summary>Starts following <paramref name="rootPid"/> (held, or not yet past the point of interest) and what it starts.</summary>
    /// <param name="followForks">Follow the processes it forks too; false: only the new programs it runs itself (execve).</param>
    public static ProcessFollower Start(int rootPid, bool followForks = true)
    {
        MemlockLimit.RemoveIfNeeded();
        var owned = new OwnedResources();
        try
        {
            var size = followForks ? FollowingATree : FollowingOneProcess;
            var followed = owned.Add(BpfMap.Create(PidSet(FollowerPrograms.Followed, size.Followed)));
            var armed = owned.Add(BpfMap.Create(PidSet(FollowerPrograms.Armed, size.Armed)));
            var forked = owned.Add(BpfMap.Create(PidSet(FollowerPrograms.Forked, size.Forked)));
            var ring = owned.Add(BpfMap.Create(MapSpec.RingBuffer(FollowerPrograms.Ring, size.RingBytes)));
            var fds = new Dictionary<string, int>
            {
                [FollowerPrograms.Followed] = followed.Fd.Value,
                [FollowerPrograms.Armed] = armed.Fd.Value,
                [FollowerPrograms.Forked] = forked.Fd.Value,
                [FollowerPrograms.Ring] = ring.Fd.Value,
            };
            // Only following forks reads a task's tgid (its offset from the kernel's BTF, megabytes to parse).
            var fork = followForks
                ? owned.Add(BpfProgram.Load(ProgramSpec.Of("pp_follow_fork", ProgramType.RawTracepoint,
                    FollowerPrograms.Fork(KernelBtf.VmlinuxMemberOffset("task_struct.tgid")).BindMaps(fds))))
                : null;
            var exec = owned.Add(BpfProgram.Load(ProgramSpec.Of("pp_follow_exec", ProgramType.RawTracepoint, FollowerPrograms.Exec().BindMaps(fds))));
            followed.Update(BitConverter.GetBytes(rootPid), BitConverter.GetBytes(1));
            if (fork is not null) owned.Add(RawTracepointLink.Attach(fork, "sched_process_fork"));
            owned.Add(RawTracepointLink.Attach(exec, "sched_process_exec"));
            return new ProcessFollower(owned, followed, armed, forked, ring, fds);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>How many processes the sets hold and the stops' ring bytes.</summary>
    private readonly record struct Capacity(uint Followed, uint Armed, uint Forked, uint RingBytes);

    /// <summary>A command and everything it starts.</summary>
    private static readonly Capacity FollowingATree = new(4096, 1024, 4096, 64 << 10);

    /// <summary>
    /// One running process's new programs (<c>-p</c>): without the fork program nothing adds to the sets but pyprobe (the
    /// one pid), and the process waits, stopped, for each stop to be read. A hash's buckets are made for its most entries
    /// (16 bytes each, vmalloc'd past 32 KB): the tree's sizes cost a launch ~0.3-0.6 ms more here.
    /// </summary>
    private static readonly Capacity FollowingOneProcess = new(16, 16, 16, 4096);

    /// <summary>
    /// A set of pids the programs fill. Growing where the kernel allows it (6.1+): a preallocated hash writes all its
    /// elements when made, and these three were ~3 ms of every launch that follows (<c>trace -p</c>, <c>calls -p</c>).
    /// </summary>
    private static MapSpec PidSet(string name, uint maxEntries) =>
        KernelFeatures.HasGrowingMaps ? MapSpec.GrowingHash(name, 4, 4, maxEntries) : MapSpec.Hash(name, 4, 4, maxEntries);

    private BpfProgram Stopper => _stopper ??= _owned.Add(BpfProgram.Load(ProgramSpec.Of("pp_follow_stop", ProgramType.Kprobe,
        FollowerPrograms.Stopper().BindMaps(_fds), _mode.ExpectedAttachType())));

    private BpfProgram AfterForkStopper => _afterForkStopper ??= _owned.Add(BpfProgram.Load(ProgramSpec.Of("pp_follow_fork_stop", ProgramType.Kprobe,
        FollowerPrograms.AfterForkStopper().BindMaps(_fds), _mode.ExpectedAttachType())));

    /// <summary>
    /// Waits until a followed process is stopped at its interpreter's start (returned stopped; the caller continues
    /// it), or until <paramref name="over"/> says the command is over (null).
    /// </summary>
    public StoppedInterpreter? WaitForInterpreter(Func<bool> over)
    {
        while (_ready.Count == 0)
        {
            _reader.WaitForData(50);
            _reader.Drain(_onRecord);
            if (_ready.Count == 0 && over()) return null;
        }
        return _ready.Dequeue();
    }

    /// <summary>
    /// Handles what arrives within <paramref name="milliseconds"/> (or until <see cref="Interrupt"/>) and hands out every
    /// process found stopped at its interpreter's start: each stays stopped until the caller continues it.
    /// </summary>
    public IReadOnlyList<StoppedInterpreter> Pump(int milliseconds)
    {
        _reader.WaitForData(milliseconds);
        _reader.Drain(_onRecord);
        if (_ready.Count == 0) return [];
        var found = _ready.ToList();
        _ready.Clear();
        return found;
    }

    /// <summary>Ends a <see cref="Pump"/> early (from another thread).</summary>
    public void Interrupt() => _reader.Interrupt();

    private void OnRecord(ReadOnlySpan<byte> record)
    {
        var pid = BinaryPrimitives.ReadInt32LittleEndian(record);
        var kind = (FollowerStop)BinaryPrimitives.ReadUInt32LittleEndian(record[4..]);
        _stopped.Add(pid);
        if (!ProcessTree.WaitUntilStopped(pid)) { Forget(pid); return; }
        if (kind == FollowerStop.AfterFork)
        {
            // A copy of a Python that runs on without exec: its interpreter is there, stopped before it returns to Python.
            _stopped.Remove(pid);
            _ready.Enqueue(new StoppedInterpreter(pid, "PyOS_AfterFork_Child"));
            return;
        }
        // Whatever it runs now, it is no copy of a Python any more.
        if (kind == FollowerStop.Exec) _forked.Delete(BitConverter.GetBytes(pid));
        try
        {
            if (kind == FollowerStop.Uprobe && _states.TryGetValue(pid, out var state) && state.AtInterpreter)
            {
                Forget(pid);
                _stopped.Remove(pid);
                _ready.Enqueue(new StoppedInterpreter(pid, StoppedAt(pid, state.Binary)));
                return;
            }
            Inspect(pid, kind);
        }
        catch (Exception e) when (e is UsdtException or IOException or UnauthorizedAccessException or UnsupportedRuntimeException)
        {
            // Gone, or not something pyprobe can follow into: it runs on untouched.
            Forget(pid);
        }
        Continue(pid);
    }

    /// <summary>A process stopped at exec or in its loader: arm the next stop, or let it go.</summary>
    private void Inspect(int pid, FollowerStop kind)
    {
        var loaderStops = 0;
        if (_states.Remove(pid, out var previous))
        {
            loaderStops = previous.LoaderStops;
            previous.Link.Dispose();
        }
        Disarm(pid);
        if (TryPython(pid) is { } process)
        {
            using (process) ArmAtInterpreter(process);
            return;
        }
        if (kind == FollowerStop.Uprobe) loaderStops++;
        if (loaderStops >= LoaderStopsBeforeGivingUp) return; // the loader mapped everything: not Python
        if (Loader(pid) is not { } loader) return; // statically linked, and not Python
        var offset = DebugStateOffset(loader) ?? throw new UnsupportedRuntimeException($"{loader}: no _dl_debug_state");
        var link = TargetLinks.Attach(_mode, Stopper, loader, [new UprobeSite(offset)], pid);
        _states[pid] = new Followed(link, atInterpreter: false) { LoaderStops = loaderStops };
        Arm(pid);
    }

    private static CPythonProcess? TryPython(int pid)
    {
        try
        {
            return CPythonProcess.Attach(pid);
        }
        catch (NotAPythonProcessException)
        {
            return null;
        }
    }

    /// <summary>Stops the process again where its interpreter first runs code.</summary>
    private void ArmAtInterpreter(CPythonProcess process)
    {
        var binary = process.Binary;
        var sites = new List<UprobeSite> { new(FileOffset(binary, EvalFrameSites.Find(binary).Entry)) };
        if (binary.Elf.FindSymbols("PyEval_EvalCode").FirstOrDefault(s => s.IsFunction && s.IsDefined) is { } evalCode)
            sites.Add(new UprobeSite(FileOffset(binary, evalCode.Value)));
        var link = TargetLinks.Attach(_mode, Stopper, binary.UprobePathFor(process.Pid), sites, process.Pid);
        _states[process.Pid] = new Followed(link, atInterpreter: true) { Binary = binary.OpenPath };
        Arm(process.Pid);
        WatchForks(binary, process.Pid);
    }

    /// <summary>
    /// Puts the PyOS_AfterFork_Child stopper on <paramref name="binary"/>, once: for every process of that file (a uprobe
    /// link filtered to one process would not fire in its children); the program stops only children listed as forked.
    /// </summary>
    private void WatchForks(CPythonBinary binary, int pid)
    {
        // The file as its processes name it, in their mount namespace: the /proc/PID/root path differs for every pid.
        string file;
        try { file = $"{new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget} {binary.DisplayPath}"; }
        catch (IOException) { return; }
        if (_afterForkLinks.ContainsKey(file)) return;
        if (binary.Elf.FindSymbols("PyOS_AfterFork_Child").FirstOrDefault(s => s.IsFunction && s.IsDefined) is not { } afterFork) return;
        _afterForkLinks[file] = TargetLinks.Attach(_mode, AfterForkStopper, binary.UprobePathFor(pid), [new UprobeSite(FileOffset(binary, afterFork.Value))], pid: 0);
    }

    /// <summary>Which of the two armed functions the process is in, from its instruction pointer's symbol.</summary>
    private static string StoppedAt(int pid, string? binaryPath)
    {
        try
        {
            var syscall = File.ReadAllText($"/proc/{pid}/syscall").Split(' ');
            // "running" or "-1 sp pc" for a process stopped outside a system call: the last field is its pc.
            if (binaryPath is null || syscall.Length < 3) return "_PyEval_EvalFrameDefault";
            using var process = CPythonProcess.Attach(pid);
            var pc = Convert.ToUInt64(syscall[^1].Trim(), 16) - process.LoadBias;
            var evalCode = process.Binary.Elf.FindSymbols("PyEval_EvalCode").FirstOrDefault(s => s.IsFunction && s.IsDefined);
            return evalCode is not null && pc >= evalCode.Value && pc < evalCode.Value + Math.Max(evalCode.Size, 16) ? "PyEval_EvalCode" : "_PyEval_EvalFrameDefault";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsdtException or FormatException or UnsupportedRuntimeException)
        {
            return "_PyEval_EvalFrameDefault";
        }
    }

    private static ulong FileOffset(CPythonBinary binary, ulong address) =>
        binary.Elf.TryVirtualAddressToFileOffset(address, executable: true)
        ?? throw new UnsupportedRuntimeException($"{binary.DisplayPath}: 0x{address:x} is not in an executable segment");

    /// <summary>The dynamic loader mapped into the process (the host path of it), if any.</summary>
    private static string? Loader(int pid)
    {
        foreach (var entry in ProcMaps.Read(pid))
        {
            if (entry.Path is not { } path || entry.Deleted || !path.StartsWith('/')) continue;
            if (!PythonProcessFiles.IsDynamicLoaderFileName(Path.GetFileName(path))) continue;
            var host = $"/proc/{pid}/root{path}";
            return File.Exists(host) ? host : path;
        }
        return null;
    }

    private static ulong? DebugStateOffset(string loader)
    {
        var elf = ElfImage.Open(loader);
        var symbol = elf.FindSymbols("_dl_debug_state").FirstOrDefault(s => s.IsDefined);
        return symbol is null ? null : elf.TryVirtualAddressToFileOffset(symbol.Value, executable: true);
    }

    private void Arm(int pid) => _armed.Update(BitConverter.GetBytes(pid), BitConverter.GetBytes(1));

    private void Disarm(int pid) => _armed.Delete(BitConverter.GetBytes(pid));

    private void Forget(int pid)
    {
        Disarm(pid);
        if (_states.Remove(pid, out var state)) state.Link.Dispose();
    }

    private void Continue(int pid)
    {
        _stopped.Remove(pid);
        ProcessSignals.Send(pid, ProcessSignals.SigCont);
    }

    /// <summary>Stops following: the kernel programs go, and every process stopped here but not handed out is continued.</summary>
    public void Dispose()
    {
        // The links first (no new stops), the programs and maps last (the reader below still maps the ring).
        _owned.Release(item => item is not (BpfProgram or BpfMap));
        foreach (var state in _states.Values) state.Link.Dispose();
        _states.Clear();
        foreach (var link in _afterForkLinks.Values) link.Dispose();
        _afterForkLinks.Clear();
        // Records that arrived after the last look: their processes are stopped, or about to be.
        _reader.Drain(record => _stopped.Add(BinaryPrimitives.ReadInt32LittleEndian(record)));
        foreach (var pid in _stopped.ToList()) Continue(pid);
        // Found but never handed out: nobody will attach to them, so they run on untraced rather than stay stopped.
        while (_ready.TryDequeue(out var ready)) ProcessSignals.Send(ready.Pid, ProcessSignals.SigCont);
        _reader.Dispose();
        _owned.Dispose();
    }
}
