using Pyprobe.Bpf.Asm;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// The wakeup policy of every program that writes to a ring buffer: records are committed without
/// waking the reader (it polls on a short timer) until the ring holds <c>threshold</c> bytes; one
/// wakeup per event costs the traced program more than the event itself.
/// </summary>
public static class RingWakeup
{
    private const int NoWakeup = 1, ForceWakeup = 2, AvailableData = 0;

    /// <summary>Leaves the bpf_ringbuf_output flags in R4 (clobbers R0–R3); a threshold ≤ 0 means default wakeups.</summary>
    public static void EmitFlags(InstructionBuilder code, int ringFd, int threshold)
    {
        if (threshold <= 0)
        {
            code.Mov64(Register.R4, 0);
            return;
        }
        code.LoadMapFd(Register.R1, ringFd)
            .Mov64(Register.R2, AvailableData)
            .Call(HelperFunction.RingbufQuery)
            .Mov64(Register.R4, ForceWakeup)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R0, threshold, "wake")
            .Mov64(Register.R4, NoWakeup)
            .Label("wake");
    }
}
