using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// A session's <see cref="CodeObjectMemo"/>: the memo and the epochs (maps the session owns), and the epoch programs on
/// sched_process_exec and, where a process pyprobe did not attach could run the session's programs, sched_process_exit,
/// attached for as long as the session (before any program can remember). The programs that drop a dying code object go
/// on each binary with its entry program (<see cref="EvalFrameAttachment"/>).
/// </summary>
/// <remarks>
/// A process's entries must not outlive it: another process given its pid would be named with them. Where every link
/// runs its programs only in the process it was made for (uprobe_multi holds that task, not its pid:
/// <see cref="SessionCore.LinksFilterByProcess"/>), no other process reaches the memo until pyprobe attaches it, and
/// <see cref="Renew"/> then gives its tgid a new epoch: the program on every exit in the system is not needed. Its first
/// attach patches the kernel's text, with interrupts to every CPU (~2 ms of a launch beside a busy target, docs/facts.md).
/// Links that name no task (perf-event uprobes, a binary's every process) keep it.
/// </remarks>
public sealed class CodeObjectMemoMaps
{
    private readonly SessionCore _core;
    private readonly BpfMap _epochs;
    private int? _memoFd, _pairsFd;

    private CodeObjectMemoMaps(SessionCore core, BpfMap epochs) => (_core, _epochs) = (core, epochs);

    /// <summary>The code-object memo (<see cref="CodeObjectMemo.MapName"/>), made when first asked for.</summary>
    public int MemoFd => _memoFd ??= _core.AddMap(MapSpec.Array("pyprobe_efmemo", CodeObjectMemo.ValueSize, CodeObjectMemo.Slots)).Fd.Value;

    /// <summary>The epochs (<see cref="CodeObjectMemo.EpochsMap"/>), shared by both memos.</summary>
    public int EpochsFd => _epochs.Fd.Value;

    /// <summary>
    /// Gives each of <paramref name="tgids"/> a new epoch, so that no entry made before counts for it: called as a process
    /// is attached, before its links exist. Another process may have had its pid (and its slot: tgids share the low bits).
    /// The new value is the time, and past the slot's last one: the exec program writes the kernel's clock there too.
    /// </summary>
    public void Renew(IEnumerable<int> tgids)
    {
        Span<byte> value = stackalloc byte[8];
        foreach (var tgid in tgids)
        {
            var key = BitConverter.GetBytes((uint)tgid & (CodeObjectMemo.EpochSlots - 1));
            var last = _epochs.TryLookup(key, value) ? BitConverter.ToUInt64(value) : 0;
            _epochs.Update(key, BitConverter.GetBytes(Math.Max(Sampling.KernelClock.NowNs, last + 1)));
        }
    }

    /// <summary>The USDT function probes' name-pair memo (<see cref="Tracing.FunctionNamePairs"/>), made when first asked for.</summary>
    /// <param name="headerOffset">Where a compact ASCII str's length lies from its first byte (<see cref="Runtime.StrLayout.LengthFromAsciiData"/>).</param>
    public Usdt.CodeGen.StringPairMemo Pairs(int headerOffset) => new(PairsFd, EpochsFd, CodeObjectMemo.EpochSlots, headerOffset, Runtime.StrLayout.CompactAsciiBits);

    private int PairsFd => _pairsFd ??= _core.AddMap(MapSpec.Array("pyprobe_pairmemo", Usdt.CodeGen.StringPairMemo.ValueSize, Usdt.CodeGen.StringPairMemo.Slots)).Fd.Value;

    /// <summary>Makes the epochs in <paramref name="core"/> and attaches the epoch programs as its links.</summary>
    /// <param name="retireAtExit">
    /// Move a process's epoch on when it exits: needed where a process the session did not attach may run its programs
    /// (see the remarks); otherwise attaching a process must <see cref="Renew"/> it.
    /// </param>
    public static CodeObjectMemoMaps Create(SessionCore core, bool retireAtExit)
    {
        var epochs = core.AddMap(MapSpec.Array("pyprobe_efepoch", 8, CodeObjectMemo.EpochSlots));
        var maps = new CodeObjectMemoMaps(core, epochs);
        var fds = new Dictionary<string, int> { [CodeObjectMemo.EpochsMap] = maps.EpochsFd };
        foreach (var (tracepoint, leaderOnly) in new[] { ("sched_process_exec", false), ("sched_process_exit", true) })
        {
            if (leaderOnly && !retireAtExit) continue;
            using var program = BpfProgram.Load(ProgramSpec.Of($"pp_efepoch_{tracepoint[14..]}", ProgramType.RawTracepoint, CodeObjectMemo.EpochProgram(leaderOnly).BindMaps(fds)));
            // The session's, not the process's being attached when the memo was first needed: it must outlive a re-attach.
            core.AddSessionLink(RawTracepointLink.Attach(program, tracepoint));
        }
        return maps;
    }

    /// <summary>The program that drops a dying code object's entry, bound to this memo.</summary>
    public AssembledProgram DeallocProgram() =>
        CodeObjectMemo.DeallocProgram().BindMaps(new Dictionary<string, int> { [CodeObjectMemo.MapName] = MemoFd });

    /// <summary>The program that drops a dying code object's name pair (<see cref="Tracing.FunctionNamePairs.ForgetProgram"/>), bound to this memo.</summary>
    public AssembledProgram PairForgetProgram(Runtime.CodeLayout code, int asciiData) =>
        Tracing.FunctionNamePairs.ForgetProgram(code, asciiData).BindMaps(new Dictionary<string, int> { [Usdt.CodeGen.StringPairMemo.MapName] = PairsFd });
}
