using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// A session's <see cref="CodeObjectMemo"/>: the memo and the epochs (maps the session owns), and the epoch programs on
/// sched_process_exec and sched_process_exit, attached for as long as the session (before any program can remember).
/// The programs that drop a dying code object go on each binary with its entry program (<see cref="EvalFrameAttachment"/>).
/// </summary>
public sealed class CodeObjectMemoMaps
{
    private readonly SessionCore _core;
    private int? _memoFd, _pairsFd;

    private CodeObjectMemoMaps(SessionCore core, int epochsFd) => (_core, EpochsFd) = (core, epochsFd);

    /// <summary>The code-object memo (<see cref="CodeObjectMemo.MapName"/>), made when first asked for.</summary>
    public int MemoFd => _memoFd ??= _core.AddMap(MapSpec.Array("pyprobe_efmemo", CodeObjectMemo.ValueSize, CodeObjectMemo.Slots)).Fd.Value;

    /// <summary>The epochs (<see cref="CodeObjectMemo.EpochsMap"/>), shared by both memos.</summary>
    public int EpochsFd { get; }

    /// <summary>The USDT function probes' name-pair memo (<see cref="Tracing.FunctionNamePairs"/>), made when first asked for.</summary>
    /// <param name="headerOffset">Where a compact ASCII str's length lies from its first byte (<see cref="Runtime.StrLayout.LengthFromAsciiData"/>).</param>
    public Usdt.CodeGen.StringPairMemo Pairs(int headerOffset) => new(PairsFd, EpochsFd, CodeObjectMemo.EpochSlots, headerOffset, Runtime.StrLayout.CompactAsciiBits);

    private int PairsFd => _pairsFd ??= _core.AddMap(MapSpec.Array("pyprobe_pairmemo", Usdt.CodeGen.StringPairMemo.ValueSize, Usdt.CodeGen.StringPairMemo.Slots)).Fd.Value;

    /// <summary>Makes the epochs in <paramref name="core"/> and attaches the epoch programs as its links.</summary>
    public static CodeObjectMemoMaps Create(SessionCore core)
    {
        var epochs = core.AddMap(MapSpec.Array("pyprobe_efepoch", 8, CodeObjectMemo.EpochSlots));
        var maps = new CodeObjectMemoMaps(core, epochs.Fd.Value);
        var fds = new Dictionary<string, int> { [CodeObjectMemo.EpochsMap] = maps.EpochsFd };
        foreach (var (tracepoint, leaderOnly) in new[] { ("sched_process_exec", false), ("sched_process_exit", true) })
        {
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
