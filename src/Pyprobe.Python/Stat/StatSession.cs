using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.Stat;

/// <summary>What a stat counter counts; the value is the counter's index in a process's entry.</summary>
public enum StatCounter
{
    Calls = 0,
    Gc = 1,
    Imports = 2,
    Audit = 3,
}

/// <summary>
/// The counting program: one u64 per counter per process in a hash map (pid → 4 × u64), created on a
/// process's first event and increased atomically. Counters, not events, cross into user space.
/// </summary>
public static class StatProgram
{
    public const int ValueSize = 8 * 4;

    /// <summary>The hash map pid → counters, by name in the generated code.</summary>
    public const string CountersMap = "counters";

    /// <summary>Generates the program bound to the counters map.</summary>
    public static AssembledProgram Generate(int countersFd, StatCounter counter) =>
        Build(counter).BindMaps(new Dictionary<string, int>(StringComparer.Ordinal) { [CountersMap] = countersFd });

    /// <summary>Generates the program with <see cref="CountersMap"/> by name, to bind later.</summary>
    public static AssembledProgram Build(StatCounter counter)
    {
        var code = new InstructionBuilder();
        var key = code.Stack.Allocate(4, "pid");
        var zero = code.Stack.Allocate(ValueSize, "zero counters");
        code.Call(HelperFunction.GetCurrentPidTgid)
            .Rsh64(Register.R0, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, key, Register.R0)
            .LoadMap(Register.R1, CountersMap)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "count");
        for (var i = 0; i < ValueSize / 8; i++) code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(zero + 8 * i), 0);
        code.LoadMap(Register.R1, CountersMap)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, zero)
            .Mov64(Register.R4, 1) // BPF_NOEXIST: another CPU may have created it meanwhile
            .Call(HelperFunction.MapUpdateElem);
        MapLookup.Emit(code, CountersMap, key, "out")
            .Label("count");
        MapLookup.Increment(code, Register.R0, 8 * (int)counter)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }
}

/// <summary>One binary the counters are attached to, and whether calls are counted there (and why not).</summary>
/// <param name="CallsNote">When calls are counted through _PyEval_EvalFrameDefault: what pyprobe writes into the process and what it costs.</param>
public sealed record StatTarget(TraceTarget Target, bool CountsCalls, string? CallsReason, bool Gated, string? CallsNote = null);

/// <summary>Whether stat counts calls through _PyEval_EvalFrameDefault where the function probes do not (3.12–3.14, builds without probes).</summary>
public enum StatEvalFrameCalls
{
    /// <summary>Never (the machine-wide view: the hook is set per process, and pyprobe does not write into every Python).</summary>
    Never,
    /// <summary>For processes the user named (-p), setting the eval-frame hook where needed.</summary>
    NamedProcesses,
    /// <summary>For processes the user named, without writing into them (--no-write): only where no hook is needed (3.8–3.10).</summary>
    NamedProcessesWithoutWrite,
}

/// <summary>Per-process counts since the session started.</summary>
public readonly record struct StatCounts(ulong Calls, ulong Gc, ulong Imports, ulong Audit);

/// <summary>
/// Counting programs on gc__start, import__find__load__start, audit and (where it fires without slowing the
/// process, or with the 3.11 gate when asked) function__entry, for every target binary. Targets can be added
/// while the session runs (a Python binary that started after pyprobe).
/// </summary>
public sealed class StatSession : ILiveSession
{
    private readonly SessionCore _core;
    private readonly BpfMap _counters;
    private readonly List<StatTarget> _targets = [];
    private readonly bool _entryGate;
    private readonly StatEvalFrameCalls _evalFrameCalls;
    private readonly ManualResetEventSlim _wake = new();

    private StatSession(SessionCore core, BpfMap counters, bool entryGate, StatEvalFrameCalls evalFrameCalls)
    {
        _core = core;
        _counters = counters;
        _entryGate = entryGate;
        _evalFrameCalls = evalFrameCalls;
    }

    public UprobeAttachMode AttachMode => _core.AttachMode;
    public string AttachModeName => AttachModeNames.Of(AttachMode);
    public IReadOnlyList<StatTarget> Targets => _targets;

    /// <param name="evalFrameCalls">Where the function probes do not count calls, whether named processes may be counted through _PyEval_EvalFrameDefault.</param>
    public static StatSession Create(bool entryGate, uint maxProcesses = 65536, StatEvalFrameCalls evalFrameCalls = StatEvalFrameCalls.Never)
    {
        var core = SessionCore.Create(null);
        try
        {
            return new StatSession(core, core.AddMap(MapSpec.Hash("pyprobe_stat", 4, StatProgram.ValueSize, maxProcesses)), entryGate, evalFrameCalls);
        }
        catch
        {
            core.Dispose();
            throw;
        }
    }

    /// <summary>Attaches the counters to <paramref name="target"/> (all processes of it when it has no pids).</summary>
    public StatTarget Add(TraceTarget target)
    {
        var (calls, reason) = CallsSupport(target, _entryGate);
        var gated = calls && EntryGate.IsNeeded(target);
        var links = new List<IDisposable>();
        try
        {
            Attach(target, "gc__start", StatCounter.Gc, links);
            Attach(target, "import__find__load__start", StatCounter.Imports, links);
            Attach(target, "audit", StatCounter.Audit, links);
            if (calls) Attach(target, "function__entry", StatCounter.Calls, links);
            if (gated) links.Add(EntryGate.Open(target, AttachMode));
        }
        catch
        {
            foreach (var link in links) link.Dispose();
            throw;
        }
        foreach (var link in links) _core.AddLink(link);
        string? note = null;
        var source = calls ? null : EvalFrameSource(target);
        if (source is { FromEvalFrame: false, Reason: { } refused }) reason = refused;
        if (source is { FromEvalFrame: true })
        {
            // Counted at every activation's entry, like function__entry (a generator's resume counts too); no return probe.
            EvalFrameAttachment.Attach(_core, target, source, (_, _, _) => StatProgram.Generate(_counters.Fd.Value, StatCounter.Calls), 0, null, "py_stat");
            (calls, reason, note) = (true, null, source.Note ?? $"calls are counted by a {source.DescribedForEntries}");
        }
        var added = new StatTarget(target, calls, reason, gated, note);
        _targets.Add(added);
        return added;
    }

    /// <summary>Where a named process's calls could come from when the probes do not count them; null when not allowed.</summary>
    private FunctionEventSource? EvalFrameSource(TraceTarget target) =>
        _evalFrameCalls == StatEvalFrameCalls.Never || target.AllProcesses || target.Pids.Count == 0 ? null
            : FunctionEventSource.For(target, allowWrite: _evalFrameCalls == StatEvalFrameCalls.NamedProcesses);

    /// <summary>Whether function__entry is counted on this target, and if not, why.</summary>
    public static (bool Counts, string? Reason) CallsSupport(TraceTarget target, bool entryGate)
    {
        if (target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__entry") is null)
            return (false, (target.Version is { } v && PythonProbeCatalog.Support("function__entry", v.Major, v.Minor) is { Firing: ProbeFiring.No } s ? s.Reason : "no function__entry probe")
                + "; stat -p PID counts them through _PyEval_EvalFrameDefault (setting the eval-frame hook on 3.11+), which it does not do machine-wide");
        if (EntryGate.IsNeeded(target) && !entryGate)
            return (false, "3.11 emits function__entry only while tracing is on, which slows the process about 10x; --entry-gate turns it on");
        return (true, null);
    }

    private void Attach(TraceTarget target, string probeName, StatCounter counter, List<IDisposable> links)
    {
        var probe = target.Binary.FindProbe(PythonProbeCatalog.Provider, probeName);
        if (probe is null) return;
        var code = StatProgram.Generate(_counters.Fd.Value, counter);
        using var program = _core.Load("py_stat", code.Bytecode);
        var sites = probe.Sites.Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset, (ulong)counter)).ToList();
        TargetLinks.Attach(AttachMode, program, target, sites, links);
    }

    /// <summary>The counts of every process that had an event.</summary>
    public Dictionary<int, StatCounts> Read()
    {
        var result = new Dictionary<int, StatCounts>();
        Span<byte> key = stackalloc byte[4];
        Span<byte> next = stackalloc byte[4];
        Span<byte> value = stackalloc byte[StatProgram.ValueSize];
        var first = true;
        while (_counters.TryGetNextKey(first ? [] : key, next))
        {
            first = false;
            next.CopyTo(key);
            if (!_counters.TryLookup(key, value)) continue;
            result[BitConverter.ToInt32(key)] = new StatCounts(BitConverter.ToUInt64(value), BitConverter.ToUInt64(value[8..]), BitConverter.ToUInt64(value[16..]), BitConverter.ToUInt64(value[24..]));
        }
        return result;
    }

    /// <summary>Drops the counters of a process that is gone.</summary>
    public void Forget(int pid) => _counters.Delete(BitConverter.GetBytes(pid));

    /// <summary>Counters have no ring to wait on: waits for <see cref="Wake"/> or the time to pass.</summary>
    public void Wait(int milliseconds) => _wake.Wait(milliseconds);

    public void Wake() => _wake.Set();

    public void Detach() => _core.Detach();

    public void Dispose()
    {
        _core.Dispose();
        _wake.Dispose();
    }
}
