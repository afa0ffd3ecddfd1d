using Pyprobe.Bpf.Sys;
using Pyprobe.Python.Sessions;
using Pyprobe.Usdt.CodeGen;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Python.Tracing;

/// <summary>Tunables of a session.</summary>
/// <param name="RingBufferBytes">Ring size: a power of two, a multiple of the page size.</param>
/// <param name="AttachMode">Force an attach path; null picks the best this kernel offers.</param>
/// <param name="Tids">Only these threads (filtered in the kernel); null for all.</param>
/// <param name="EntryGate">On 3.11, raise the line semaphore so function__entry fires (see <see cref="Tracing.EntryGate"/>).</param>
/// <param name="WakeupFraction">The reader is woken when the ring is this full; below that it must poll (see <see cref="PollInterval"/>).</param>
/// <param name="InternStrings">
/// Send file and function names once per process instead of with every event (see
/// <see cref="StringInterning"/>). Off by default because it measured slower: on CPython 3.9 and
/// kernel 6.18, reading the str header and looking the key up cost about 70–100 ns per event more
/// than copying the names, even 128-byte paths (bpf_probe_read_user_str copies a word at a time).
/// Records are smaller with it, which matters only when the ring, not the traced program, is the limit.
/// </param>
/// <param name="RememberNamePairs">
/// Where a binary allows it (CPython 3.8–3.11 USDT function probes, see <see cref="FunctionNamePairs"/>), send a function's
/// file and name once and then only refer to them, known by their addresses without reading the target
/// (<see cref="StringPairMemo"/>): the event program then costs about half as much. Where it does not, names are copied
/// (or interned, with <paramref name="InternStrings"/>).
/// </param>
/// <param name="AllowHookWrite">May set the eval-frame hook of 3.11+ processes for function events (see <see cref="FunctionEventSource"/>).</param>
/// <param name="PreparedRecordMap">The ring or the CPU queues, created ahead while the targets were resolved (see <see cref="Sessions.PreparedRecordMap"/>), or null.</param>
/// <param name="CpuQueues">
/// Records go to a queue per CPU, read back in time order (<see cref="SessionCore.OpenCpuQueues"/>), where the kernel allows;
/// else to the ring. <paramref name="RingBufferBytes"/> is what the queues share.
/// </param>
/// <param name="KeyFunctionsByCodeObject">
/// USDT function events carry their frame's code object's first line instead of the probe's line, and 3.15's
/// generator-creating entries are not sent (flow; see <see cref="Analysis.EntryFrameCode.RecordRewrite"/>).
/// </param>
public sealed record TraceSessionOptions(uint RingBufferBytes = 16 << 20, UprobeAttachMode? AttachMode = null, IReadOnlyList<int>? Tids = null, bool EntryGate = true, double WakeupFraction = 1.0 / 16, bool InternStrings = false, bool AllowHookWrite = true, bool TargetsHeld = false,
    bool KeyFunctionsByCodeObject = false, PreparedRecordMap? PreparedRecordMap = null, bool RememberNamePairs = true, bool CpuQueues = true)
{
    /// <summary>Ring bytes at which a record wakes the reader: <see cref="WakeupFraction"/> of the ring.</summary>
    public int WakeupBytes => (int)Math.Clamp(RingBufferBytes * WakeupFraction, 0, int.MaxValue);
}

/// <summary>
/// Probes attached to one or more Python binaries: generated programs, their maps and links, and the
/// ring buffer their events arrive in. Disposing detaches everything and lowers every semaphore raised.
/// </summary>
public sealed class TraceSession : IEventSession
{
    private readonly SessionCore _core;
    private readonly CpuScratchMap _scratch;
    private readonly List<AttachedProbe> _probes = [];
    private readonly RecordHandler _onRecord;
    private ProbeEventHandler? _handler;

    private TraceSession(SessionCore core, CpuScratchMap scratch)
    {
        _core = core;
        _scratch = scratch;
        _onRecord = OnRecord;
    }

    public UprobeAttachMode AttachMode => _core.AttachMode;
    public string AttachModeName => AttachModeNames.Of(AttachMode);
    public IRecordReader Reader => _core.Reader!;

    public ulong RingPendingBytes => Reader.PendingBytes;

    public ulong RingBytes => Reader.Size;

    /// <summary>
    /// How often a reader should look at the ring even without a wakeup: records are committed
    /// without waking the reader until the ring is <see cref="TraceSessionOptions.WakeupFraction"/> full.
    /// </summary>
    public const int PollInterval = 10;

    /// <summary>Attached probes, indexed by the id their events carry.</summary>
    public IReadOnlyList<AttachedProbe> Probes => _probes;

    /// <summary>Targets whose 3.11 entry gate is open.</summary>
    public IReadOnlyList<TraceTarget> GatedTargets => _gated;

    /// <summary>Probe hits in the traced processes (after the pid and tid filters).</summary>
    public ulong Hits => _scratch.SumCounter(UsdtEventProgram.HitsCounterOffset);

    /// <summary>Events the kernel could not put in the ring buffer because it was full, summed over CPUs.</summary>
    public ulong Lost => _scratch.SumCounter(UsdtEventProgram.LostCounterOffset);

    /// <summary>
    /// Attaches <paramref name="probes"/> to every target. A probe a target lacks is skipped for that
    /// target (callers check support first and tell the user); if nothing at all can be attached, throws.
    /// </summary>
    /// <summary>The queues' name (see <see cref="SessionCore.OpenCpuQueues"/>).</summary>
    public const string QueuesName = "pyprobe_queues";

    /// <summary>What a session of <paramref name="bytes"/> will send its records to, to be made ahead (<see cref="Sessions.PreparedRecordMap"/>).</summary>
    public static PreparedRecordMap PrepareRecordMap(uint bytes) => new(RingName, bytes, () => SessionCore.CpuQueuesSpec(QueuesName, bytes, (uint)QueuePayloadBytes));

    /// <summary>The longest record any probe's program sends (the queues keep room for one after their end).</summary>
    public static int QueuePayloadBytes => Math.Max(PythonProbeCatalog.All.Max(p => LayoutOf(p).MaxRecordSize), EvalFrameProgram.Layout.MaxRecordSize);

    /// <summary>The ring's name (for <see cref="Sessions.PreparedRecordMap"/>).</summary>
    public const string RingName = "pyprobe_events";

    public static TraceSession Attach(IReadOnlyList<TraceTarget> targets, IReadOnlyList<PythonProbe> probes, TraceSessionOptions? options = null)
    {
        options ??= new TraceSessionOptions();
        if (targets.Count == 0 || probes.Count == 0) throw new ArgumentException("nothing to attach");
        var core = SessionCore.Create(options.AttachMode, needsCookies: true);
        TraceSession session;
        BpfMap ring;
        (BpfMap Doorbell, CpuQueueMap Queues, int WakeupThreshold)? queued;
        try
        {
            var scratchSize = probes.Max(p => UsdtEventProgram.ScratchValueSize(LayoutOf(p)));
            queued = options.CpuQueues ? core.OpenCpuQueues(QueuesName, options.RingBufferBytes, (uint)QueuePayloadBytes, UsdtEventLayout.TimestampOffset, options.WakeupFraction, options.PreparedRecordMap) : null;
            ring = queued?.Doorbell ?? core.OpenRing(RingName, options.RingBufferBytes, options.PreparedRecordMap, options.WakeupBytes);
            if (queued is { } q) scratchSize = Math.Max(scratchSize, EventProgramParts.ScratchValueSize(q.Queues.Layout));
            session = new TraceSession(core, CpuScratchMap.Make("pyprobe_scratch", EventProgramParts.Scratch, scratchSize, core.AddMap));
        }
        catch
        {
            core.Dispose();
            throw;
        }
        try
        {
            LaunchPhases.Mark("session: record maps ready");
            var pidFilter = core.PidFilter("pyprobe_pids", targets);
            var maps = new UsdtEventMaps(ring.Fd.Value, session._scratch.Map.Fd.Value, pidFilter?.Fd.Value, options.Tids, queued?.WakeupThreshold ?? options.WakeupBytes, Queues: queued?.Queues);
            if (options.InternStrings && probes.Any(IsInternable))
            {
                var sent = core.AddMap(new MapSpec("pyprobe_sent", MapType.LruHash, StringInterning.KeySize, 1, SentStringCapacity));
                session._sentMapFd = sent.Fd.Value;
            }
            if (options.KeyFunctionsByCodeObject) session._frameCodes = new Analysis.EntryFrameCodes(core, "pyprobe_tls");
            session._requested = probes;
            session._options = options;
            session._maps = maps;
            session._pidFilter = pidFilter;
            session._anyProcessOfABinary = targets.Any(t => t.AllProcesses);
            foreach (var target in targets) core.AttachForTarget(target, () => session.AttachTarget(target));
            if (session._probes.Count == 0) throw new UsdtException("none of the requested probes exists in the target");
            return session;
        }
        catch (SyscallException e) when (e.Is(Errno.EACCES) || e.Is(Errno.EPERM))
        {
            // Missing privileges are the user's to fix, not an internal error: say which, in one line.
            session.Dispose();
            throw new UsdtException(e.Message, e);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private Analysis.EntryFrameCodes? _frameCodes;
    private IReadOnlyList<PythonProbe> _requested = [];
    private TraceSessionOptions _options = new();
    private UsdtEventMaps? _maps;
    private BpfMap? _pidFilter;
    private readonly List<TraceTarget> _gated = [];

    /// <summary>A target is a binary's every process: its links name no task (later targets must name pids, <see cref="AttachProcess"/>).</summary>
    private bool _anyProcessOfABinary;

    /// <summary>Whether a process the session did not attach could run its programs, so the memos' epochs must move on at every exit (<see cref="CodeObjectMemoMaps"/>).</summary>
    private bool RetireMemoAtExit => _anyProcessOfABinary || !_core.LinksFilterByProcess;

    /// <summary>The requested probes on one target: function events from USDT or _PyEval_EvalFrameDefault (see <see cref="FunctionEventSource"/>), the rest from USDT.</summary>
    private void AttachTarget(TraceTarget target)
    {
        // Before its links: another process may have had its pid, and left entries in the memos.
        _memo?.Renew(target.Pids);
        var probes = _requested;
        var source = probes.Any(IsFunctionProbe) ? FunctionEventSource.For(target, _options.AllowHookWrite, _options.TargetsHeld, FunctionEventSource.WantsReturns(probes)) : null;
        var fromUsdt = probes.Where(p => !(source?.FromEvalFrame == true && IsFunctionProbe(p)))
            .Select(p => (Probe: p, Usdt: target.Binary.FindProbe(PythonProbeCatalog.Provider, p.Name))).Where(x => x.Usdt is not null).ToList();
        using var staged = new StagedLinks();
        var pairs = _options.RememberNamePairs && fromUsdt.Any(x => FunctionNamePairs.Carries(x.Probe)) ? ForgetNamePairsIn(target, staged) : null;
        LaunchPhases.Mark("session: name-pair memo ready");
        foreach (var (probe, usdt) in fromUsdt) AttachProbe(target, probe, usdt!, _maps!, pairs, staged);
        LaunchPhases.Mark("session: event programs loaded");
        if (source?.FromEvalFrame == true)
        {
            // Its programs are all loaded before its first link too (EvalFrameAttachment stages them per process).
            AttachEvalFrame(target, source, probes, _maps!);
            staged.AttachAll();
            return;
        }
        staged.AttachAll();
        if (_options.EntryGate && probes.Any(p => p.Name == "function__entry") && EntryGate.IsNeeded(target))
        {
            _core.OpenEntryGate(target);
            _gated.Add(target);
        }
    }

    /// <summary>
    /// Attaches the session's probes to one more running process (a Python a followed command started, stopped at its
    /// interpreter's start) while events flow; returns what it got ("function__entry, function__return (source)").
    /// Throws when none of the probes fires in it; whatever was attached to it then stays until the session detaches.
    /// </summary>
    public string AttachProcess(TraceTarget target)
    {
        if (target.AllProcesses) throw new ArgumentException("a process target names its pid", nameof(target));
        var first = _probes.Count;
        var source = _requested.Any(IsFunctionProbe) ? FunctionEventSource.For(target, _options.AllowHookWrite, held: false, FunctionEventSource.WantsReturns(_requested)) : null;
        if (source?.Kind == FunctionEventSourceKind.None && _requested.All(IsFunctionProbe))
            throw new UsdtException($"it has no {string.Join(", ", _requested.Select(p => p.Name))} probe that fires ({source.Reason})");
        _core.ReleaseExited(Launching.ProcessTree.IsAlive);
        foreach (var pid in target.Pids) _pidFilter?.Update(BitConverter.GetBytes(pid), [1]);
        _core.AttachForTarget(target, () => AttachTarget(target));
        var added = _probes.Skip(first).ToList();
        if (added.Count == 0) throw new UsdtException($"it has none of the probes {string.Join(", ", _requested.Select(p => p.Name))}");
        return string.Join(", ", added.Select(p => p.Probe.Name).Distinct()) + $" ({(source is { Kind: not FunctionEventSourceKind.None } known ? known.DescribedWith(returns: FunctionEventSource.WantsReturns(_requested)) : "USDT")})";
    }

    /// <summary>
    /// Where the USDT function probes' names can be memoised in <paramref name="target"/> (<see cref="FunctionNamePairs"/>):
    /// stages the program that forgets a dying code object's pair, before any program that can remember one, and returns
    /// the memo; null where it cannot be kept right (the names are then interned as before).
    /// </summary>
    private StringPairMemo? ForgetNamePairsIn(TraceTarget target, StagedLinks staged)
    {
        if (FunctionNamePairs.Where(target) is not var (site, code, str)) return null;
        if (target.Binary.Elf.TryVirtualAddressToFileOffset(site, executable: true) is not ulong offset) return null;
        _memo ??= CodeObjectMemoMaps.Create(_core, RetireMemoAtExit);
        staged.Stage(_core.Load("py_code_free", _memo.PairForgetProgram(code, str.AsciiData).Bytecode), forget => _core.Attach(forget, target, [new UprobeSite(offset, 0, 0)]));
        _pairsRemembered = true;
        return _memo.Pairs(str.LengthFromAsciiData);
    }

    /// <summary>Some program sends names by reference after a first record with their bytes and fingerprints (<see cref="FunctionNamePairs"/>).</summary>
    private bool _pairsRemembered;

    private void AttachProbe(TraceTarget target, PythonProbe probe, UsdtProbe usdt, UsdtEventMaps maps, StringPairMemo? pairs, StagedLinks staged)
    {
        var frameCode = IsFunctionProbe(probe) ? _frameCodes?.For(target) : null;
        if (frameCode is not null) _frameCodes!.RecordTlsOffsets(target);
        var id = (uint)_probes.Count;
        var layout = LayoutOf(probe, _sentMapFd is int fd ? InterningFor(target, probe, fd) : null, FunctionNamePairs.Carries(probe) ? pairs : null);
        _probes.Add(new AttachedProbe(id, probe, target, layout, usdt.Sites.Count));

        if (SessionCore.ConstantTgids(target, maps.TargetsFd is not null) is { } tgids) maps = maps with { Tgids = tgids };

        // One program per distinct argument spec (sites with %rip arguments differ per site).
        foreach (var sites in TargetLinks.SitesBySpec(usdt))
        {
            var rewrite = frameCode?.RecordRewrite(sites[0].Address, probe.Name == "function__entry");
            var rewriteMaps = frameCode is { NeedsTlsOffsets: true } ? new Dictionary<string, int> { [Analysis.EntryFrameCode.TlsOffsetsMap] = _frameCodes!.TlsOffsetsFd } : null;
            var code = UsdtEventProgram.Generate(layout, sites[0].Arguments, maps, sites[0].Address, target.Binary.ResolveSymbolAddress, rewrite, rewriteMaps, probeId: id);
            var uprobes = sites.Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset, id)).ToList();
            staged.Stage(_core.Load(ProgramName(probe.Name), code.Bytecode), program => _core.Attach(program, target, uprobes));
        }
    }

    private static bool IsFunctionProbe(PythonProbe probe) => probe.Name is "function__entry" or "function__return";

    private EvalFrameMaps? _evalFrameMaps;
    private CodeObjectMemoMaps? _memo;

    /// <summary>Function events from _PyEval_EvalFrameDefault instead of USDT (see <see cref="EvalFrameAttachment"/>), in the same record layout.</summary>
    private void AttachEvalFrame(TraceTarget target, FunctionEventSource source, IReadOnlyList<PythonProbe> probes, UsdtEventMaps maps)
    {
        if (_evalFrameMaps is null)
        {
            // The activation stack exists for returns; entries alone never touch it (EvalFrameProgramKind.SendOnly).
            var stack = ActivationStack.CreateMaps(_core, "pyprobe_ef", used: FunctionEventSource.WantsReturns(_requested));
            _evalFrameMaps = new EvalFrameMaps(maps.RingFd, maps.ScratchFd, stack.Depths.Fd.Value, stack.Frames.Fd.Value,
                maps.TargetsFd, maps.Tids, maps.WakeupThreshold,
                () => _memo ??= CodeObjectMemoMaps.Create(_core, RetireMemoAtExit), Queues: maps.Queues, ZeroChunkFd: stack.ZeroChunk.Fd.Value);
        }
        uint? Add(string name)
        {
            var probe = probes.FirstOrDefault(p => p.Name == name);
            if (probe is null) return null;
            var id = (uint)_probes.Count;
            _probes.Add(new AttachedProbe(id, probe, target, EvalFrameProgram.Layout, 1, source.DescribedWith(returns: FunctionEventSource.WantsReturns(probes))));
            return id;
        }
        var entry = Add("function__entry");
        var ret = Add("function__return");
        EvalFrameAttachment.Attach(_core, target, source, entry, ret, SessionCore.ConstantTgids(target, maps.TargetsFd is not null) is { } tgids ? _evalFrameMaps with { Tgids = tgids } : _evalFrameMaps);
    }

    /// <summary>Decodes a record handed out by <see cref="Reader"/>.</summary>
    public ProbeEvent Decode(ReadOnlySpan<byte> record)
    {
        var id = BinaryPrimitives.ReadUInt32LittleEndian(record[UsdtEventLayout.ProbeIdOffset..]);
        if (id >= _probes.Count) throw new UsdtException($"event with unknown probe id {id}");
        var e = new ProbeEvent(record, _probes[(int)id], SentStrings);
        // Eval-frame records carry fingerprints too: the code-object memo sends names interned (CodeObjectMemo).
        if (_sentMapFd is not null || _evalFrameMaps is not null || _pairsRemembered) e.RememberSentStrings();
        return e;
    }

    /// <summary>Strings the kernel sent once (interning); resolves the records that only name them.</summary>
    public SentStrings SentStrings { get; } = new();

    /// <summary>
    /// Hands every record waiting in the ring to <paramref name="handler"/>, decoded in place (one pass;
    /// no allocation per event). Returns how many there were.
    /// </summary>
    public int Drain(ProbeEventHandler handler)
    {
        _handler = handler;
        return Reader.Drain(_onRecord);
    }

    private void OnRecord(ReadOnlySpan<byte> record)
    {
        var e = Decode(record);
        _handler!(in e);
    }

    public void Wait(int milliseconds) => Reader.WaitForData(milliseconds);

    public void Wake() => Reader.Interrupt();

    /// <summary>Detaches every probe now (semaphores drop to 0) while keeping the ring readable.</summary>
    public void Detach() => _core.Detach();

    private static UsdtEventLayout LayoutOf(PythonProbe probe, StringInterning? interning = null, StringPairMemo? pairs = null)
    {
        var strings = probe.Arguments.Select((a, i) => (a, i)).Where(x => x.a.Kind == ProbeArgumentKind.CString).Select(x => x.i).ToList();
        return new UsdtEventLayout(probe.Arguments.Count, strings, interning, pairs);
    }

    /// <summary>Distinct strings remembered in the kernel before the least recently used are sent again.</summary>
    private const uint SentStringCapacity = 65536;

    private int? _sentMapFd;

    /// <summary>
    /// The hot probes pass co_filename and co_name, CPython str objects whose compact ASCII bytes
    /// follow a PyASCIIObject header: 48 bytes up to 3.11 (with wstr), 40 from 3.12.
    /// </summary>
    private static bool IsInternable(PythonProbe probe) => probe.Name is "function__entry" or "function__return" or "line";

    private static StringInterning? InterningFor(TraceTarget target, PythonProbe probe, int mapFd)
    {
        if (!IsInternable(probe) || CPythonFacts.For(target.Version) is not { } facts) return null;
        return new StringInterning(facts.Str.LengthFromAsciiData, mapFd, StrLayout.CompactAsciiBits);
    }


    /// <summary>Program names show up in bpftool; keep them recognisable within 15 bytes.</summary>
    private static string ProgramName(string probe) => "py_" + probe.Replace("__", "_", StringComparison.Ordinal);

    public void Dispose() => _core.Dispose();
}

/// <summary>Receives one decoded event; the event lives in the ring's memory only during the call.</summary>
public delegate void ProbeEventHandler(in ProbeEvent e);
