using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// A session's <see cref="CodeObjectMemo"/>: the memo and the epochs (maps the session owns), and the epoch programs on
/// sched_process_exec and sched_process_exit, attached for as long as the session (before any program can remember).
/// The programs that drop a dying code object go on each binary with its entry program (<see cref="EvalFrameAttachment"/>).
/// </summary>
public sealed class CodeObjectMemoMaps
{
    private CodeObjectMemoMaps(int memoFd, int epochsFd) => (MemoFd, EpochsFd) = (memoFd, epochsFd);

    /// <summary>The memo (<see cref="CodeObjectMemo.MapName"/>).</summary>
    public int MemoFd { get; }

    /// <summary>The epochs (<see cref="CodeObjectMemo.EpochsMap"/>).</summary>
    public int EpochsFd { get; }

    /// <summary>Makes the maps in <paramref name="core"/> and attaches the epoch programs as its links.</summary>
    public static CodeObjectMemoMaps Create(SessionCore core)
    {
        var memo = core.AddMap(MapSpec.Array("pyprobe_efmemo", CodeObjectMemo.ValueSize, CodeObjectMemo.Slots));
        var epochs = core.AddMap(MapSpec.Array("pyprobe_efepoch", 8, CodeObjectMemo.EpochSlots));
        var maps = new CodeObjectMemoMaps(memo.Fd.Value, epochs.Fd.Value);
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
}
