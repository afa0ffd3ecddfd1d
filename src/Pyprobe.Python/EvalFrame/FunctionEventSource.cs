using Pyprobe.Python.Versions;

namespace Pyprobe.Python.EvalFrame;

/// <summary>Where a target's function__entry/function__return events come from.</summary>
public enum FunctionEventSourceKind
{
    /// <summary>The USDT probes (3.8–3.10 and 3.15 with --with-dtrace; 3.11 with the line gate).</summary>
    Usdt,
    /// <summary>A uprobe on _PyEval_EvalFrameDefault, which every call goes through (3.8–3.10 without probes).</summary>
    EvalFrame,
    /// <summary>The same, after pyprobe sets interp->eval_frame so calls stop being inlined (3.11+).</summary>
    EvalFrameWithHook,
    /// <summary>Neither: the reason says why.</summary>
    None,
}

/// <summary>The decision for one target, with what to tell the user.</summary>
/// <param name="Note">A line for stderr before attaching (what pyprobe writes and what it costs), or null.</param>
public sealed record FunctionEventSource(FunctionEventSourceKind Kind, string? Note, string? Reason)
{
    public bool FromEvalFrame => Kind is FunctionEventSourceKind.EvalFrame or FunctionEventSourceKind.EvalFrameWithHook;

    /// <summary>How the Attached line and `list -v` name the source.</summary>
    public string Label => Kind switch
    {
        FunctionEventSourceKind.EvalFrame => "uprobe on _PyEval_EvalFrameDefault",
        FunctionEventSourceKind.EvalFrameWithHook => "uprobe on _PyEval_EvalFrameDefault with the eval-frame hook",
        _ => "USDT",
    };

    /// <summary>
    /// What the source costs the traced program per call, as measured on a 2-core x86-64 machine with kernel 6.18
    /// (BENCHMARKS.md, "Function events by source"): the trap of the uprobe dominates; the hook adds the interpreter's
    /// own slower call path.
    /// </summary>
    public string Cost => Kind switch
    {
        FunctionEventSourceKind.EvalFrame => EvalFrameCost,
        FunctionEventSourceKind.EvalFrameWithHook => EvalFrameWithHookCost,
        _ => UsdtCost,
    };

    /// <summary>"USDT (about … per call)": the Attached line's and `list -v`'s words for the source with its cost.</summary>
    public string Described => $"{Label}, {Cost}";

    /// <summary>
    /// The same where only entries are taken (no uprobe on a ret: `trace function__entry`, `calls --count`, `stat`): the
    /// returns' cost, by far the larger, is not paid and not quoted.
    /// </summary>
    public string DescribedForEntries => Kind switch
    {
        FunctionEventSourceKind.EvalFrame => $"{Label}, {EvalFrameEntryCost}",
        FunctionEventSourceKind.EvalFrameWithHook => $"{Label}, {EvalFrameEntryCost}, the hook itself {HookCost}",
        _ => Described,
    };

    /// <summary><see cref="Described"/> or <see cref="DescribedForEntries"/>.</summary>
    public string DescribedWith(bool returns) => returns ? Described : DescribedForEntries;

    private const string UsdtCost = "about 0.6-1.4 µs per event";
    // The figures once, for the Attached line, `list -v` and the note before the hook is written (BENCHMARKS.md, "Function events by source").
    private const string EvalFrameEntryCost = "about 1.0-1.5 µs per entry";
    private const string EvalFrameProbesCost = EvalFrameEntryCost + ", about 10 µs more per return";
    private const string HookCost = "10-110 ns per call";
    private const string EvalFrameCost = EvalFrameProbesCost + " (a uprobe on a ret)";
    private const string EvalFrameWithHookCost = EvalFrameCost + ", the hook itself " + HookCost;

    /// <summary>What every process of <paramref name="target"/>'s binary gets with the hook allowed (for `list -v`, which has no process to ask).</summary>
    public static FunctionEventSource ForProcessesOf(TraceTarget target) => For(target with { Pids = [NoProcess] }, allowWrite: true);

    private const int NoProcess = -1;

    /// <summary>
    /// Decides for <paramref name="target"/>. USDT stays the source where the function probes fire for every call
    /// (3.8–3.10, 3.15). On 3.11 with probes the entry probe needs the line gate, which slows every line the program
    /// runs; measured against the hook (BENCHMARKS.md, "Function events by source") the hook's entry is cheaper even on a
    /// one-line function, but a return through it is a uprobe on _PyEval_EvalFrameDefault's ret (about 10 µs on kernel
    /// 6.18) against the USDT return probe's ~1 µs: so entries alone come through the hook (where it may be written,
    /// per process), anything with returns through USDT and the gate. Elsewhere _PyEval_EvalFrameDefault, with the hook
    /// from 3.11. <paramref name="allowWrite"/> false refuses the hook: then USDT where it fires, nothing on 3.12–3.14.
    /// </summary>
    /// <param name="held">The target is a command started held, before its interpreter exists: there is no hook to set yet.</param>
    /// <param name="returns">Returns are wanted too (function__return, or entries and returns paired).</param>
    public static FunctionEventSource For(TraceTarget target, bool allowWrite, bool held = false, bool returns = true)
    {
        var version = target.Version;
        if (version is null || CPythonFacts.For(version) is not { } facts) return new(FunctionEventSourceKind.Usdt, null, null);
        var hasProbes = target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__entry") is not null;
        if (hasProbes && facts.FunctionProbesFireForEveryCall) return new(FunctionEventSourceKind.Usdt, null, null);
        if (hasProbes && facts.FunctionEntryNeedsLineSemaphore && (returns || !allowWrite || held || target.AllProcesses))
            return new(FunctionEventSourceKind.Usdt, null, null);
        if (!facts.HasEvalFrameHook) return new(FunctionEventSourceKind.EvalFrame, null, null);
        if (held)
            return new(FunctionEventSourceKind.None, null, "-- CMD starts the program before its interpreter exists, so there is no eval-frame hook to set yet: start it, then attach with -p PID");
        if (target.AllProcesses)
            return hasProbes ? new(FunctionEventSourceKind.Usdt, null, null)
                : new(FunctionEventSourceKind.None, null, "the eval-frame hook is set per process: name the processes with -p");
        if (!allowWrite)
            return new(FunctionEventSourceKind.None, null, $"CPython {version} inlines Python calls unless its eval-frame hook is set, and --no-write forbids setting it");
        return WithHook(version, target.Pids.Where(JitRequested).ToList(), InlineInitGap(facts, target));
    }

    /// <summary>
    /// Why this 3.13 build's inline <c>__init__</c> calls cannot be probed (<see cref="InlineInitSites"/>), or null: where
    /// the file with _PyEval_EvalFrameDefault is another (a shared libpython), its process's attach looks for itself.
    /// </summary>
    private static string? InlineInitGap(CPythonFacts facts, TraceTarget target)
    {
        if (facts.InlineInit is not { } layout || target.Binary.Elf.TryFindUniqueSymbol("_PyEval_EvalFrameDefault") is null) return null;
        return InlineInitSites.Find(target.Binary.Elf, layout, out var reason) is null ? reason : null;
    }

    /// <summary>Whether <paramref name="probes"/> ask for returns (the argument of <see cref="For"/>).</summary>
    public static bool WantsReturns(IEnumerable<PythonProbe> probes) => probes.Any(p => p.Name == "function__return");

    /// <summary>
    /// Decides for call statistics: a build with USDT function probes keeps them (3.11 with the line gate, as
    /// before: the hook against the gate is not measured for calls yet); elsewhere as <see cref="For"/>.
    /// </summary>
    public static FunctionEventSource ForCalls(TraceTarget target, bool allowWrite, bool held = false) =>
        target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__entry") is not null
            ? new(FunctionEventSourceKind.Usdt, null, null)
            : For(target, allowWrite, held);

    /// <summary>
    /// A running process of this binary keeps USDT as its function-event source (the probes fire for every call):
    /// then a command can be held before it runs and its probes attached by file.
    /// </summary>
    public static bool UsdtServesProcesses(TraceTarget target) =>
        target.Version is not { } version || CPythonFacts.For(version) is not { } facts
        || (target.Binary.FindProbe(PythonProbeCatalog.Provider, "function__entry") is not null && (facts.FunctionProbesFireForEveryCall || facts.FunctionEntryNeedsLineSemaphore));

    private static FunctionEventSource WithHook(PythonVersion version, IReadOnlyList<int> jitPids, string? inlineInitGap)
    {
        var note = $"CPython {version}: function events come from a uprobe on _PyEval_EvalFrameDefault; pyprobe writes 8 bytes into the process (interp->eval_frame = &_PyEval_EvalFrameDefault) so that calls are not inlined, "
            + $"which costs the program about {HookCost} besides the probes ({EvalFrameProbesCost}), and puts NULL back when it detaches (--no-write refuses)";
        if (inlineInitGap is not null)
            note += $"; CPython {version} runs the __init__ of a class call it has specialised without the hook, and pyprobe cannot find where in this build ({inlineInitGap}), so those __init__ calls are missed";
        if (jitPids.Count > 0 && CPythonFacts.For(version)?.JitMayInlineAfterHookWrite == true)
            note += $"; process {string.Join(", ", jitPids)} runs with PYTHON_JIT on: CPython's own setter would also throw away the JIT's compiled traces, a raw write cannot, "
                + "so calls made inside traces compiled before pyprobe attached may be missed";
        return new(FunctionEventSourceKind.EvalFrameWithHook, note, null);
    }

    /// <summary>PYTHON_JIT set to anything but 0 in the process's environment (how 3.14+ builds with the JIT turn it on).</summary>
    private static bool JitRequested(int pid)
    {
        if (pid <= 0) return false;
        try
        {
            var environ = File.ReadAllText($"/proc/{pid}/environ");
            foreach (var entry in environ.Split('\0'))
                if (entry.StartsWith("PYTHON_JIT=", StringComparison.Ordinal)) return entry.Length > "PYTHON_JIT=".Length && entry["PYTHON_JIT=".Length..] != "0";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }
}
