using Pyprobe.Python.Sessions;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// Puts eval-frame programs on one target's processes: the entry program at _PyEval_EvalFrameDefault (past
/// endbr64), the return program at each of its rets, and — for <see cref="FunctionEventSourceKind.EvalFrameWithHook"/> —
/// the hook, written after the probes are in place and restored when the session detaches (it is one of the
/// session's links, so every exit path that detaches restores it).
/// </summary>
public static class EvalFrameAttachment
{
    /// <summary>Attaches the event programs for every pid of <paramref name="target"/>; the cookies are the probe ids the records carry.</summary>
    public static void Attach(SessionCore core, TraceTarget target, FunctionEventSource source, uint? entryId, uint? returnId, EvalFrameMaps maps) =>
        Attach(core, target, source,
            // Returns need the entries' stack even when only returns are asked for: the entry program then only pushes.
            // Without returns nothing pops, so the entry program pushes nothing.
            (binary, point, memo) => EvalFrameProgram.Generate(
                point.IsReturn ? EvalFrameProgramKind.Return
                : entryId is null ? EvalFrameProgramKind.PushOnly
                : returnId is null ? EvalFrameProgramKind.SendOnly
                : EvalFrameProgramKind.Entry,
                binary.Facts, binary.Layout, maps, memo, point.IsReturn ? returnId : entryId, point.InlineInit),
            entryId ?? 0, returnId, "py_evalf", maps.Memo);

    /// <summary>
    /// Attaches the programs <paramref name="generate"/> makes for each process's binary (for each <see cref="EvalFramePoint"/>;
    /// then whether they may use the <see cref="CodeObjectMemo"/>); no return programs when <paramref name="returnCookie"/> is null.
    /// With the hook on 3.13, also those of the <c>__init__</c> it runs inline (<see cref="InlineInitSites"/>), where the build shows them.
    /// </summary>
    /// <param name="memo">
    /// The session's memo (made on first call), or null for none: where the binary says where code objects die, the
    /// program that forgets them is attached first, and the programs are made to use it.
    /// </param>
    /// <param name="beforePrograms">
    /// Called with each process, its binary, the path its uprobes go on and its <see cref="StagedLinks"/>, to stage what
    /// must go on before its programs.
    /// </param>
    public static void Attach(SessionCore core, TraceTarget target, FunctionEventSource source, Func<CPythonBinary, EvalFramePoint, bool, AssembledProgram> generate,
        uint entryCookie, uint? returnCookie, string programName, Func<CodeObjectMemoMaps>? memo = null, Action<int, CPythonBinary, string, StagedLinks>? beforePrograms = null)
    {
        foreach (var pid in target.Pids)
        {
            try
            {
                AttachOne(core, pid, source, generate, entryCookie, returnCookie, programName, memo, beforePrograms);
            }
            catch (Exception e) when (e is UsdtException or UnsupportedRuntimeException or IOException or Bpf.Sys.SyscallException
                && target.Pids.Count > 1 && !Launching.ProcessTree.IsAlive(pid))
            {
                // One of several processes (--all's) exited between being found and being attached: nothing to trace there.
            }
        }
    }

    private static void AttachOne(SessionCore core, int pid, FunctionEventSource source, Func<CPythonBinary, EvalFramePoint, bool, AssembledProgram> generate,
        uint entryCookie, uint? returnCookie, string programName, Func<CodeObjectMemoMaps>? memo, Action<int, CPythonBinary, string, StagedLinks>? beforePrograms)
    {
        using var staged = new StagedLinks();
        using var process = CPythonProcess.Attach(pid);
        LaunchPhases.Mark("eval-frame: process read");
        var binary = process.Binary;
        var sites = EvalFrameSites.Find(binary);
        LaunchPhases.Mark("eval-frame: sites found");
        var path = binary.UprobePathFor(pid);
        void Link(BpfProgram program, IReadOnlyList<UprobeSite> at) => core.AddLink(TargetLinks.Attach(core.AttachMode, program, path, at, pid));
        beforePrograms?.Invoke(pid, binary, path, staged);
        // Code objects' deaths are probed before anything can remember one.
        var memoized = false;
        if (memo is not null && CodeDeallocSite.Find(binary) is ulong dealloc)
        {
            UprobeSite[] at = [new UprobeSite(FileOffset(binary, dealloc), 0, 0)];
            staged.Stage(core.Load($"{programName}_free", memo().DeallocProgram().Bytecode), forget => Link(forget, at));
            memoized = true;
        }
        var inline = source.Kind == FunctionEventSourceKind.EvalFrameWithHook && binary.Facts.InlineInit is { } init
            ? InlineInitSites.Find(binary.Elf, init, out _) : null;
        void Stage(string name, EvalFramePoint point, ulong address, uint cookie)
        {
            UprobeSite[] at = [new UprobeSite(FileOffset(binary, address), 0, cookie)];
            staged.Stage(core.Load($"{programName}_{name}", generate(binary, point, memoized).Bytecode), program => Link(program, at));
        }
        // Returns first: a return with no open activation is dropped, an entry without its return would linger.
        if (returnCookie is uint rid)
        {
            var offsets = sites.Returns.Select(r => new UprobeSite(FileOffset(binary, r), 0, rid)).ToList();
            staged.Stage(core.Load($"{programName}_ret", generate(binary, EvalFramePoint.Return, memoized).Bytecode), program => Link(program, offsets));
            if (inline is not null) Stage("initr", EvalFramePoint.InlineInitReturn, inline.FrameClear, rid);
        }
        Stage("entry", EvalFramePoint.Entry, sites.Entry, entryCookie);
        if (inline is not null) Stage("init", EvalFramePoint.InlineInitEntry, inline.Allocation, entryCookie);
        LaunchPhases.Mark("eval-frame: programs loaded");
        if (source.Kind == FunctionEventSourceKind.EvalFrameWithHook)
            // The hook goes into every interpreter, and into each one created while attached (it owns the hook).
            staged.Stage(() => core.AddLink(InterpreterCreationWatch.Start(core.AttachMode, pid)));
        staged.AttachAll();
        LaunchPhases.Mark("eval-frame: attached (hook set, interpreter watch)");
    }

    private static ulong FileOffset(CPythonBinary binary, ulong address) =>
        binary.Elf.TryVirtualAddressToFileOffset(address, executable: true)
        ?? throw new UnsupportedRuntimeException($"{binary.DisplayPath}: 0x{address:x} is not in an executable segment");
}

/// <summary>Which of an eval-frame source's programs: at an activation's start or its end, on the common path or for 3.13's inline <c>__init__</c>.</summary>
public readonly record struct EvalFramePoint(bool IsReturn, bool InlineInit)
{
    public static EvalFramePoint Entry => new(false, false);
    public static EvalFramePoint Return => new(true, false);
    public static EvalFramePoint InlineInitEntry => new(false, true);
    public static EvalFramePoint InlineInitReturn => new(true, true);
}
