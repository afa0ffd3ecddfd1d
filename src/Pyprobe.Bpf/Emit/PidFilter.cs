using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Emit;

/// <summary>
/// Keeps the events of chosen processes and threads: the tgid must be one of a few constants compared inline or a key of
/// a hash map (u32 → anything), and the tid one of a few constants. uprobe_multi's own pid filter is per thread on
/// 6.6–6.9, and perf-event uprobes on a binary fire for every process using it, so the program checks again.
/// </summary>
public static class PidFilter
{
    /// <param name="pidTgid">Holds bpf_get_current_pid_tgid() (tgid high, tid low); a callee-saved register.</param>
    /// <param name="targetsMap">Name of the hash map of allowed tgids, or null to accept every process.</param>
    /// <param name="tids">Thread ids to keep, or null/empty for every thread.</param>
    /// <param name="reject">Where a filtered-out event jumps. Clobbers R0–R5.</param>
    /// <param name="tgids">
    /// Processes to keep, compared as constants (a program made for known processes: a compare instead of a hash lookup that
    /// cost 65–80 ns an event); when given, <paramref name="targetsMap"/> is not used.
    /// </param>
    public static void Emit(InstructionBuilder code, Register pidTgid, string? targetsMap, IReadOnlyList<int>? tids, string reject, IReadOnlyList<int>? tgids = null)
    {
        if (tgids is { Count: > 0 })
        {
            var accept = code.Scope("tgid")["accept"];
            code.Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32);
            foreach (var tgid in tgids) code.JumpIf32(JumpCondition.Equal, Register.R1, tgid, accept);
            code.Jump(reject).Label(accept);
        }
        else if (targetsMap is not null)
        {
            var key = code.Stack.Allocate(4, "tgid key");
            code.Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
                .StoreMem(MemorySize.Word, Register.FramePointer, key, Register.R1)
                .LoadMap(Register.R1, targetsMap)
                .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
                .Call(HelperFunction.MapLookupElem)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, reject);
        }

        if (tids is { Count: > 0 })
        {
            var accept = code.Scope("tid")["accept"];
            foreach (var tid in tids) code.JumpIf32(JumpCondition.Equal, pidTgid, tid, accept);
            code.Jump(reject).Label(accept);
        }
    }
}
