using System.Text;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Sessions;
using Pyprobe.Usdt.CodeGen;
using static Pyprobe.Python.Analysis.CallStatsLayout;

namespace Pyprobe.Python.Analysis;

/// <summary>Tunables of a <see cref="CallStatsSession"/>.</summary>
/// <param name="EntryGate">On 3.11, raise the line semaphore so function__entry fires (about 10x slower on call-heavy code); without it calls are counted from returns, untimed.</param>
/// <param name="AttachMode">Force an attach path; null picks the best this kernel offers.</param>
/// <param name="MaxFrames">Frames kept per thread in the kernel; deeper calls are counted without a time.</param>
/// <param name="MaxFunctions">Distinct (process, function, first line) entries the kernel can hold; null: 16,384 for each
/// running process named, up to 65,536, which a command started held (its Pythons come later) and a binary's every process
/// get (see <see cref="CallStatsSession.FunctionCapacity"/>). Calls of a function the table has no room for still count
/// exactly: they travel to user space with its names.</param>
/// <param name="MaxThreads">Thread stacks kept at once (<see cref="PerThreadMaps"/>: a thread's goes when it exits; where the kernel has only LRU maps, the least recently used is recycled).</param>
/// <param name="RingBufferBytes">Ring for name records: a power of two, a multiple of the page size.</param>
/// <param name="AllowHookWrite">Let pyprobe set the eval-frame hook of 3.11+ targets (see <see cref="FunctionEventSource.ForCalls"/>).</param>
/// <param name="TargetsHeld">The targets are commands started held, before their interpreter exists.</param>
/// <param name="Timed">Time calls (entry and return attached). False counts each call at its return alone: one probe a call
/// instead of two and no clock read, no thread stacks, and on 3.11 no entry gate; rows then have no times and no first line.
/// Calls from _PyEval_EvalFrameDefault are then counted at its entry alone, without the uprobes on its rets.</param>
public sealed record CallStatsOptions(
    bool EntryGate = true,
    UprobeAttachMode? AttachMode = null,
    int MaxFrames = DefaultMaxFrames,
    uint? MaxFunctions = null,
    uint MaxThreads = 4096,
    uint RingBufferBytes = 1 << 20,
    bool AllowHookWrite = true,
    bool TargetsHeld = false,
    bool Timed = true);

/// <summary>How calls are measured in one target.</summary>
/// <param name="Timed">Entry and return are attached: calls have durations.</param>
/// <param name="UntimedReason">Why they have none, when <paramref name="Timed"/> is false.</param>
/// <param name="Gated">The 3.11 entry gate is open for this target.</param>
/// <param name="Source">Where its calls come from (USDT, or _PyEval_EvalFrameDefault with or without the hook).</param>
public sealed record CallStatsTarget(TraceTarget Target, bool Timed, string? UntimedReason, bool Gated, FunctionEventSource Source)
{
    /// <summary>The probes its calls come from: entry and return when timed; counted alone, USDT's return or _PyEval_EvalFrameDefault's entry.</summary>
    public IReadOnlyList<string> ProbeNames => Timed ? ["function__entry", "function__return"] : [Source.FromEvalFrame ? "function__entry" : "function__return"];

    /// <summary>Where its calls come from, with what that costs (no return's cost where no return is probed).</summary>
    public string Described => Source.DescribedWith(returns: Timed);
}

/// <summary>
/// The engine behind <c>pyprobe calls</c>: per-function call statistics aggregated in the kernel (counts, total,
/// self, min, max and a log-linear latency histogram); user space only reads the maps and receives each
/// function's names once.
/// </summary>
/// <remarks>
/// <para>A function is keyed by (pid, filename pointer, funcname pointer, first line, the name's generation, the
/// process's epoch). Pointers identify the strings of a live code object cheaply; the names are read once, when the
/// kernel creates the key, and kept in user space. A code object freed and another made at the same addresses (a
/// loop of compile/exec) would add its calls to the old row under the old names: a uprobe where code objects die
/// moves the generation of the dying one's names on (<see cref="CallStatsProgram.ForgetProgram"/>), and exec or exit
/// moves the process's epoch, so the new code object starts a row of its own. Rows with the same names and first line
/// are added up. Two functions with the same name in one file differ by first line.</para>
/// <para>The table is a plain hash shared by the CPUs, one value per function: a per-CPU value would be another page
/// for every call to touch, and its size times the CPUs (1,296 bytes × 64 is 83 KB a function on a 64-CPU machine).
/// Counts, totals and histogram buckets use atomic adds and are exact. Min and max are a plain compare-and-store,
/// exact unless two threads of one process return from the same function at once, which the GIL rules out (a
/// free-threaded build could lose a min or max, never a call).</para>
/// </remarks>
public sealed class CallStatsSession : ILiveSession
{
    private readonly SessionCore _core;
    private readonly BpfMap _ring;
    private readonly BpfMap _stats;
    private readonly BpfMap _scratch;
    private readonly Dictionary<NameKey, (string File, string Func)> _names = [];
    private readonly Dictionary<NameKey, RawEntry> _carried = [];
    /// <summary>
    /// A counts-only table's calls already handed out by <see cref="TakeInterval"/>, by row. Its rows are not deleted
    /// between intervals (an interval is the difference), so no call can fall between a read and a delete.
    /// </summary>
    private readonly Dictionary<NameKey, ulong> _countsTaken = [];
    /// <summary>
    /// Names by everything of a row's key but its first line: a row whose own name record was lost takes those of another
    /// code object with the same names at the same addresses, of the same generation (a later one there may be another).
    /// </summary>
    private readonly Dictionary<(int Pid, ulong File, ulong Func, ulong Generation), (string File, string Func)> _namesByPointers = [];
    private readonly List<CallStatsTarget> _targets = [];
    private readonly EntryFrameCodes _frameCodes;

    private readonly record struct NameKey(int Pid, int Line, ulong File, ulong Func, ulong Generation);

    private CallStatsSession(SessionCore core, CallStatsOptions options, BpfMap ring, BpfMap stats, BpfMap scratch)
    {
        _core = core;
        Options = options;
        _ring = ring;
        _stats = stats;
        _scratch = scratch;
        _frameCodes = new EntryFrameCodes(core, "pyprobe_ctls");
    }

    public UprobeAttachMode AttachMode => _core.AttachMode;
    public string AttachModeName => AttachModeNames.Of(AttachMode);
    public CallStatsOptions Options { get; }

    /// <summary>The ring name records arrive in; <see cref="Snapshot"/> drains it, a caller may also wait on it.</summary>
    public IRecordReader Reader => _core.Reader!;

    public IReadOnlyList<CallStatsTarget> Targets => _targets;

    /// <summary>Name records the kernel could not send because the ring was full (summed over CPUs).</summary>
    public ulong LostNameRecords => Counter(LostNamesCounter);

    /// <summary>
    /// The function table's size. A hash's buckets are made for its most entries when it is made (16 bytes each, even
    /// without preallocation; vmalloc'd and written then): 65,536 entries cost a launch ~3 ms here, 16,384 a quarter of it.
    /// </summary>
    public static uint FunctionCapacity(CallStatsOptions options, IReadOnlyList<TraceTarget> targets)
    {
        const int PerProcess = 16384, Most = 65536;
        if (options.MaxFunctions is { } asked) return asked;
        if (options.TargetsHeld || targets.Any(t => t.AllProcesses)) return Most;
        return (uint)Math.Min(Most, PerProcess * Math.Max(1, targets.Sum(t => t.Pids.Count)));
    }

    public static CallStatsSession Attach(IReadOnlyList<TraceTarget> targets, CallStatsOptions? options = null)
    {
        options ??= new CallStatsOptions();
        if (targets.Count == 0) throw new ArgumentException("nothing to attach");
        if (options.MaxFrames is < CallStatsProgram.MatchWindow or > 1024) throw new ArgumentOutOfRangeException(nameof(options), "MaxFrames must be between 4 and 1024");
        var core = SessionCore.Create(options.AttachMode);
        CallStatsSession session;
        try
        {
            var ring = core.OpenRing("pyprobe_names", options.RingBufferBytes);
            // A plain hash (see remarks): the value sits in the entry the lookup already reads. No preallocation: the table
            // takes memory for the functions called, not for its capacity. Counts alone keep the calls counter alone.
            var stats = core.AddMap(new MapSpec("pyprobe_calls", MapType.Hash, KeySize, (uint)(options.Timed ? StatsValueSize : CountsValueSize),
                FunctionCapacity(options, targets), Flags: 1));
            var scratch = core.AddMap(MapSpec.PerCpuArray("pyprobe_cscratch", ScratchValueSize, 1));
            session = new CallStatsSession(core, options, ring, stats, scratch);
        }
        catch
        {
            core.Dispose();
            throw;
        }
        try
        {
            session.AttachAll(targets);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private void AttachAll(IReadOnlyList<TraceTarget> targets)
    {
        var (plans, refusal) = Plan(targets, Options.TargetsHeld);
        if (plans.Count == 0)
            throw new UsdtException(refusal ?? "no target has function probes (CPython 3.12–3.14 removed them; 3.15 restored them)");
        _pidFilter = _core.PidFilter("pyprobe_cpids", targets);
        if (plans is [var only]) _core.AttachForTarget(only.Target, () => AttachPlans(plans));
        else AttachPlans(plans);
    }

    /// <summary>
    /// Attaches to one more running process (a Python a followed command started, stopped at its interpreter's start)
    /// while the run goes on; returns where its calls come from. Throws when it has no function events.
    /// </summary>
    public string AttachProcess(TraceTarget target)
    {
        if (target.AllProcesses) throw new ArgumentException("a process target names its pid", nameof(target));
        var (plans, refusal) = Plan([target], held: false);
        if (plans.Count == 0) throw new UsdtException(refusal ?? "it has no function probes (CPython 3.12–3.14 removed them; 3.15 restored them)");
        _core.ReleaseExited(Launching.ProcessTree.IsAlive);
        foreach (var pid in target.Pids) _pidFilter?.Update(BitConverter.GetBytes(pid), [1]);
        _core.AttachForTarget(target, () => AttachPlans(plans));
        return $"calls ({_targets[^1].Described})";
    }

    /// <summary>How one target's calls are measured: from _PyEval_EvalFrameDefault, or its USDT return (and entry) probes.</summary>
    private readonly record struct CallPlan(TraceTarget Target, FunctionEventSource Source, UsdtProbe? Return, UsdtProbe? Entry, string? Reason);

    private (List<CallPlan> Plans, string? Refusal) Plan(IReadOnlyList<TraceTarget> targets, bool held)
    {
        var plans = new List<CallPlan>();
        string? refusal = null;
        foreach (var target in targets)
        {
            var source = FunctionEventSource.ForCalls(target, Options.AllowHookWrite, held);
            if (source.FromEvalFrame)
            {
                plans.Add(new CallPlan(target, source, null, null, null));
                continue;
            }
            refusal ??= source.Reason;
            var ret = target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__return");
            if (ret is null) continue;
            var entry = target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__entry");
            string? reason = null;
            if (!Options.Timed) reason = CountedOnly;
            else if (entry is null) reason = "this interpreter has no function__entry probe, so calls are counted from returns";
            else if (EntryGate.IsNeeded(target) && !Options.EntryGate)
                reason = "CPython 3.11 fires function__entry only while tracing is on and the entry gate is off, so calls are counted from returns";
            plans.Add(new CallPlan(target, new FunctionEventSource(FunctionEventSourceKind.Usdt, null, null), ret, reason is null ? entry : null, reason));
        }
        return (plans, refusal);
    }

    /// <summary>Why calls have no times when only counts were asked for (<see cref="CallStatsOptions.Timed"/> false).</summary>
    public const string CountedOnly = "only counts were asked for: calls are counted at their return";

    /// <summary>The same for calls from _PyEval_EvalFrameDefault, counted where each activation starts.</summary>
    public const string CountedAtEntry = "only counts were asked for: calls are counted where _PyEval_EvalFrameDefault starts them";

    private BpfMap? _pidFilter, _zero, _threadStacks;
    private ActivationStackMaps? _activations;

    /// <summary>The maps the plans' programs use, each created the first time a plan needs it (a process attached later may need more).</summary>
    private CallStatsMaps MapsFor(IReadOnlyList<CallPlan> plans)
    {
        _zero ??= _core.AddMap(MapSpec.Array("pyprobe_czero", (uint)Math.Max(StackValueSize(Options.MaxFrames), StatsValueSize), 1));
        var timedEvalFrame = Options.Timed && plans.Any(p => p.Source.FromEvalFrame);
        if (_threadStacks is null && (timedEvalFrame || plans.Any(p => p.Entry is not null)))
        {
            _threadStacks = PerThreadMaps.Create(_core, "pyprobe_cstacks", 4, (uint)StackValueSize(Options.MaxFrames), Options.MaxThreads);
            PerThreadMaps.ClearOnExit(_core, "pyprobe_cstacks_exit", PerThreadMaps.DeleteThreadEntry(_threadStacks.Fd.Value));
        }
        if (_activations is null && timedEvalFrame)
            _activations = ActivationStack.CreateMaps(_core, "pyprobe_c");
        foreach (var (target, _, _, entry, _) in plans)
            if (entry is not null) _frameCodes.RecordTlsOffsets(target);
        _generations ??= _core.AddMap(MapSpec.Array("pyprobe_cgen", 8, CallStatsProgram.GenerationSlots));
        // Its thread stacks' program is on sched_process_exit already (ClearOnExit): retiring epochs there costs no text patch.
        _memo ??= CodeObjectMemoMaps.Create(_core, retireAtExit: true);
        return new CallStatsMaps(_threadStacks?.Fd.Value ?? -1, _stats.Fd.Value, _zero.Fd.Value, _scratch.Fd.Value, _ring.Fd.Value, _pidFilter?.Fd.Value,
            _activations?.Depths.Fd.Value ?? -1, _activations?.Frames.Fd.Value ?? -1, _frameCodes.TlsOffsetsFd, _generations.Fd.Value, _memo.EpochsFd,
            ZeroChunkFd: _activations?.ZeroChunk.Fd.Value ?? -1);
    }

    private BpfMap? _generations;
    private CodeObjectMemoMaps? _memo;

    /// <summary>
    /// Puts the program that moves a dying code object's name generations on (<see cref="CallStatsProgram.ForgetProgram"/>)
    /// where a USDT plan's code objects die, before its call programs (an eval-frame plan's goes on with them:
    /// <see cref="AttachForget(CPythonBinary, string, int, CallStatsMaps, StagedLinks)"/>). Where the binary does not say where that
    /// is, calls are keyed as before (a code object at a dead one's addresses may then add to the dead one's row).
    /// </summary>
    private void AttachForget(TraceTarget target, CallStatsMaps maps, StagedLinks staged)
    {
        if (CPythonFacts.For(target.Version) is not { } facts || CodeDeallocSite.Find(target.Binary.Elf) is not ulong site
            || target.Binary.Elf.TryVirtualAddressToFileOffset(site, executable: true) is not ulong offset) return;
        if (target.CodeObjectLayout(facts) is not { } layout) return;
        staged.Stage(_core.Load("py_calls_free", ForgetProgram(layout, facts.Str, maps).Bytecode), program => _core.Attach(program, target, [new UprobeSite(offset, 0, 0)]));
    }

    /// <summary>The same for one process of an eval-frame plan, whose binary its attach has open: staged before its call programs.</summary>
    private void AttachForget(CPythonBinary binary, string path, int pid, CallStatsMaps maps, StagedLinks staged)
    {
        if (CodeDeallocSite.Find(binary) is not ulong site || binary.Elf.TryVirtualAddressToFileOffset(site, executable: true) is not ulong offset) return;
        staged.Stage(_core.Load("py_calls_free", ForgetProgram(binary.Layout.Code, binary.Facts.Str, maps).Bytecode),
            program => _core.AddLink(TargetLinks.Attach(_core.AttachMode, program, path, [new UprobeSite(offset, 0, 0)], pid)));
    }

    private static AssembledProgram ForgetProgram(CodeLayout layout, StrLayout str, CallStatsMaps maps) =>
        CallStatsProgram.ForgetProgram(layout, str).BindMaps(new Dictionary<string, int> { [CallStatsProgram.GenerationsMap] = maps.GenerationsFd });

    private void AttachPlans(IReadOnlyList<CallPlan> plans)
    {
        var sessionMaps = MapsFor(plans);
        foreach (var (target, source, ret, entry, reason) in plans)
        {
            var maps = SessionCore.ConstantTgids(target, sessionMaps.PidsFd is not null) is { } tgids ? sessionMaps with { Tgids = tgids } : sessionMaps;
            if (source.FromEvalFrame)
            {
                // Counting alone needs no return programs (a uprobe on each ret, the dearest part): each activation counts at its entry.
                var entryKind = Options.Timed ? CallStatsProbeKind.Entry : CallStatsProbeKind.CountingEntry;
                EvalFrameAttachment.Attach(_core, target, source,
                    (binary, point, _) => CallStatsProgram.Generate(point.IsReturn ? CallStatsProbeKind.TimedReturn : entryKind,
                        new CallSiteSource.EvalFrame(binary.Facts, binary.Layout, point.InlineInit), maps, Options.MaxFrames),
                    entryCookie: 0, returnCookie: Options.Timed ? 0 : null, "py_calls", beforePrograms: (pid, binary, path, staged) => AttachForget(binary, path, pid, maps, staged));
                _targets.Add(new CallStatsTarget(target, Options.Timed, Options.Timed ? null : CountedAtEntry, false, source));
                continue;
            }
            // Every program loaded before the first link (StagedLinks), linked in this order.
            using (var staged = new StagedLinks())
            {
                AttachForget(target, maps, staged);
                // Returns first: a return without its entry is counted untimed; an entry without its return would linger.
                AttachProbe(target, ret!, entry is null ? CallStatsProbeKind.CountingReturn : CallStatsProbeKind.TimedReturn, maps, staged);
                if (entry is not null) AttachProbe(target, entry, CallStatsProbeKind.Entry, maps, staged);
                staged.AttachAll();
            }
            var gated = false;
            if (entry is not null)
            {
                if (EntryGate.IsNeeded(target))
                {
                    _core.OpenEntryGate(target);
                    gated = true;
                }
            }
            _targets.Add(new CallStatsTarget(target, entry is not null, reason, gated, source));
        }
    }

    private void AttachProbe(TraceTarget target, UsdtProbe usdt, CallStatsProbeKind kind, CallStatsMaps maps, StagedLinks staged)
    {
        foreach (var sites in TargetLinks.SitesBySpec(usdt))
        {
            var source = new CallSiteSource.Usdt(sites[0].Arguments, sites[0].Address, target.Binary.ResolveSymbolAddress, kind == CallStatsProbeKind.Entry ? _frameCodes.For(target) : null);
            var code = CallStatsProgram.Generate(kind, source, maps, Options.MaxFrames);
            var name = kind switch { CallStatsProbeKind.Entry => "py_calls_entry", CallStatsProbeKind.TimedReturn => "py_calls_ret", _ => "py_calls_count" };
            var uprobes = sites.Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset)).ToList();
            staged.Stage(_core.Load(name, code.Bytecode), program => _core.Attach(program, target, uprobes));
        }
    }

    /// <summary>Detaches every probe now (semaphores drop, the 3.11 gate closes) while keeping the maps readable.</summary>
    public void Detach() => _core.Detach();

    /// <summary>Waits for name records (or <see cref="Wake"/>) and reads those that arrived.</summary>
    public void Wait(int milliseconds)
    {
        Reader.WaitForData(milliseconds);
        DrainNames();
    }

    public void Wake() => Reader.Interrupt();

    /// <summary>Reads pending name records from the ring; returns how many arrived.</summary>
    public int DrainNames()
    {
        var total = 0;
        int n;
        while ((n = Reader.Drain(OnNameRecord)) > 0) total += n;
        return total;
    }

    private void OnNameRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length < NameStringsOffset) return;
        var key = ReadKey(record);
        int fileLength = BinaryPrimitives.ReadUInt16LittleEndian(record[NameLengthsOffset..]);
        int funcLength = BinaryPrimitives.ReadUInt16LittleEndian(record[(NameLengthsOffset + 2)..]);
        if (NameStringsOffset + fileLength + funcLength > record.Length) return;
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(record[NameTruncatedOffset..]);
        var file = NameOf(flags, 0, record.Slice(NameStringsOffset, fileLength));
        var func = NameOf(flags, 1, record.Slice(NameStringsOffset + fileLength, funcLength));
        _names[key] = (file, func);
        _namesByPointers[(key.Pid, key.File, key.Func, key.Generation)] = (file, func);
        if ((flags & CarriesCallFlag) != 0) AddCarriedCall(key, record);
    }

    /// <summary>Name <paramref name="index"/> of a name record whose flags word is <paramref name="flags"/>, made UTF-8 where the kernel sent a str's characters.</summary>
    private static string NameOf(uint flags, int index, ReadOnlySpan<byte> bytes) =>
        Encoding.UTF8.GetString(StringTranscoder.ToUtf8(UsdtEventLayout.EncodingOf(flags, index), bytes));

    /// <summary>A call the kernel could not put in its table, counted here exactly as the kernel would have.</summary>
    private void AddCarriedCall(NameKey key, ReadOnlySpan<byte> record)
    {
        if (!_carried.TryGetValue(key, out var entry)) _carried[key] = entry = new RawEntry(key, new ulong[BucketCount]);
        entry.Calls++;
        if (BinaryPrimitives.ReadUInt64LittleEndian(record[CallTimedOffset..]) == 0) return;
        var duration = BinaryPrimitives.ReadUInt64LittleEndian(record[CallDurationOffset..]);
        entry.Timed++;
        entry.Total += duration;
        entry.Self += BinaryPrimitives.ReadUInt64LittleEndian(record[CallSelfOffset..]);
        if (entry.Min == 0 || duration < entry.Min) entry.Min = duration;
        entry.Max = Math.Max(entry.Max, duration);
        entry.Histogram[BucketIndex(duration)]++;
    }

    private static NameKey ReadKey(ReadOnlySpan<byte> key) => new(
        BinaryPrimitives.ReadInt32LittleEndian(key[KeyPidOffset..]),
        BinaryPrimitives.ReadInt32LittleEndian(key[KeyLineOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(key[KeyFilenameOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(key[KeyFuncnameOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(key[KeyGenerationOffset..])); // with the epoch

    /// <summary>Clears every function's statistics (e.g. after printing an interval).</summary>
    public void Reset()
    {
        foreach (var key in Keys()) _stats.Delete(key);
        _countsTaken.Clear();
    }

    /// <summary>The table holds counts alone (<see cref="CallStatsOptions.Timed"/> false): the calls counter, nothing else.</summary>
    private bool CountsOnly => _stats.Spec.ValueSize == CountsValueSize;

    /// <summary>
    /// The statistics so far, leaving the kernel's maps as they are: reading again later gives
    /// the same calls plus those made since (what an exporter of running totals reads).
    /// </summary>
    public CallStats Snapshot() => Read(reset: false);

    /// <summary>
    /// The statistics since the last <see cref="TakeInterval"/> (or since attach): each function's entry is read
    /// and then deleted, so consecutive intervals cover disjoint calls and min, max and percentiles describe the
    /// interval alone. Calls that finish between the read and the delete of their function's entry are in neither.
    /// Counts alone are exact: an interval is what each count grew by since the last, and nothing is deleted.
    /// </summary>
    public CallStats TakeInterval() => Read(reset: true);

    private CallStats Read(bool reset)
    {
        var value = new byte[_stats.UserValueSize];
        var raw = new List<RawEntry>();
        foreach (var keyBytes in Keys())
        {
            if (!_stats.TryLookup(keyBytes, value)) continue;
            var entry = new RawEntry(ReadKey(keyBytes), new ulong[BucketCount]);
            if (CountsOnly)
            {
                var calls = U64(value, CallsOffset);
                var taken = _countsTaken.GetValueOrDefault(entry.Key);
                if (reset) _countsTaken[entry.Key] = calls;
                if (calls == taken) continue;
                entry.Calls = calls > taken ? calls - taken : calls; // smaller: the row was made again since
                raw.Add(entry);
                continue;
            }
            if (reset) _stats.Delete(keyBytes);
            ReadOnlySpan<byte> v = value;
            entry.Calls = U64(v, CallsOffset);
            entry.Timed = U64(v, TimedOffset);
            entry.Total = U64(v, TotalOffset);
            entry.Self = U64(v, SelfOffset);
            entry.Min = U64(v, MinOffset);
            entry.Max = U64(v, MaxOffset);
            for (var b = 0; b < BucketCount; b++) entry.Histogram[b] = U64(v, HistogramOffset + 8 * b);
            raw.Add(entry);
        }
        DrainNames();
        foreach (var carried in _carried.Values)
        {
            var copy = new RawEntry(carried.Key, new ulong[BucketCount]);
            copy.Add(carried);
            raw.Add(copy);
        }
        if (reset) _carried.Clear();
        var functions = Aggregate(raw);
        return new CallStats(functions, Counter(LostNamesCounter), Counter(UnmatchedReturnsCounter), Counter(OverflowEntriesCounter),
            Counter(DiscardedFramesCounter), Counter(StatsFullCounter), Counter(NoStackCounter));
    }

    private sealed class RawEntry(NameKey key, ulong[] histogram)
    {
        public NameKey Key { get; } = key;
        public ulong[] Histogram { get; } = histogram;
        public string File { get; set; } = "";
        public string Func { get; set; } = "";
        public ulong Calls, Timed, Total, Self, Min, Max;

        public void Add(RawEntry other)
        {
            Calls += other.Calls;
            Timed += other.Timed;
            Total += other.Total;
            Self += other.Self;
            if (other.Min != 0 && (Min == 0 || other.Min < Min)) Min = other.Min;
            Max = Math.Max(Max, other.Max);
            for (var b = 0; b < BucketCount; b++) Histogram[b] += other.Histogram[b];
        }
    }

    private List<FunctionStats> Aggregate(List<RawEntry> raw)
    {
        // Same names and first line = same row (pointers may differ, e.g. after a code object was re-created).
        var rows = new Dictionary<(int Pid, string File, string Func, int Line), RawEntry>();
        foreach (var entry in raw)
        {
            (entry.File, entry.Func) = ResolveNames(entry.Key);
            if (IsInitCleanupShim(entry)) continue;
            var id = (entry.Key.Pid, entry.File, entry.Func, entry.Key.Line);
            if (rows.TryGetValue(id, out var existing)) existing.Add(entry);
            else rows[id] = entry;
        }
        // Returns counted without their entry carry no first line: fold them into the one timed row of that name.
        foreach (var (id, entry) in rows.Where(r => r.Key.Line == 0 && r.Value.Timed == 0).ToList())
        {
            var siblings = rows.Where(r => r.Key.Pid == id.Pid && r.Key.File == id.File && r.Key.Func == id.Func && r.Key.Line != 0).ToList();
            if (siblings.Count != 1) continue;
            siblings[0].Value.Add(entry);
            rows.Remove(id);
        }

        var result = new List<FunctionStats>(rows.Count);
        foreach (var (id, e) in rows)
        {
            var timed = e.Timed > 0;
            int? line = id.Line == 0 && !timed ? null : id.Line;
            ulong? min = timed ? e.Min : null, max = timed ? e.Max : null;
            var histogram = timed ? (IReadOnlyList<ulong>)e.Histogram : [];
            result.Add(new FunctionStats(id.Pid, id.File, id.Func, line, e.Calls, e.Timed,
                timed ? e.Total : null, timed ? e.Self : null, timed ? (double)e.Total / e.Timed : null, min, max,
                CallStatsMath.Quantile(histogram, e.Timed, min, max, 0.50),
                CallStatsMath.Quantile(histogram, e.Timed, min, max, 0.90),
                CallStatsMath.Quantile(histogram, e.Timed, min, max, 0.99),
                histogram, e.Calls > e.Timed ? UntimedReason(id.Pid) : null));
        }
        result.Sort((a, b) => (b.TotalNs ?? 0).CompareTo(a.TotalNs ?? 0) is var c && c != 0 ? c : b.Count.CompareTo(a.Count));
        return result;
    }

    /// <summary>
    /// The return of CPython's <c>_Py_InitCleanup</c> shim (3.13+; code named "__init__" in a file named "__init__"):
    /// a class call specialised as CALL_ALLOC_AND_ENTER_INIT pushes it under the __init__ frame to check that __init__
    /// returned None, and 3.15's function__return fires when it returns, without an entry. It is not a call (CPython's
    /// profiler does not see it); __init__ itself is counted as usual.
    /// </summary>
    private static bool IsInitCleanupShim(RawEntry entry) => entry.Timed == 0 && entry.File == "__init__" && entry.Func == "__init__";

    private string UntimedReason(int pid)
    {
        foreach (var t in _targets)
            if (!t.Timed && (t.Target.AllProcesses || t.Target.Pids.Contains(pid))) return t.UntimedReason!;
        return $"no matching function__entry was seen for some calls: they started before tracing, ran deeper than {Options.MaxFrames} frames, or were a 3.15 generator throw()";
    }

    private (string File, string Func) ResolveNames(NameKey key)
    {
        if (_names.TryGetValue(key, out var names)) return names;
        if (_namesByPointers.TryGetValue((key.Pid, key.File, key.Func, key.Generation), out names)) return names;
        // The record was lost (ring full): read the strings from the process while it is alive.
        names = (ReadProcessString(key.Pid, key.File) ?? $"<0x{key.File:x}>", ReadProcessString(key.Pid, key.Func) ?? $"<0x{key.Func:x}>");
        _names[key] = names;
        return names;
    }

    private static string? ReadProcessString(int pid, ulong address)
    {
        if (address == 0 || address > long.MaxValue) return null;
        try
        {
            using var mem = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            mem.Seek((long)address, SeekOrigin.Begin);
            var buffer = new byte[MaxNameLength];
            var read = mem.Read(buffer, 0, buffer.Length);
            var end = Array.IndexOf(buffer, (byte)0, 0, read);
            return Encoding.UTF8.GetString(buffer, 0, end >= 0 ? end : read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private List<byte[]> Keys()
    {
        var keys = new List<byte[]>();
        var current = Array.Empty<byte>();
        while (true)
        {
            var next = new byte[KeySize];
            if (!_stats.TryGetNextKey(current, next)) break;
            keys.Add(next);
            current = next;
        }
        return keys;
    }

    /// <summary>Drops the statistics of a process that exited, so a long-running reader does not fill the map with the dead.</summary>
    public void Forget(int pid)
    {
        foreach (var key in Keys())
            if (BinaryPrimitives.ReadInt32LittleEndian(key.AsSpan(KeyPidOffset)) == pid)
            {
                _stats.Delete(key);
                _countsTaken.Remove(ReadKey(key));
            }
    }

    private ulong Counter(int offset) => _scratch.SumPerCpuCounter(0, offset);

    private static ulong U64(ReadOnlySpan<byte> value, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(value[offset..]);

    public void Dispose() => _core.Dispose();
}
