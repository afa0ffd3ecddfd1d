using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Emit;

/// <summary>
/// <c>bpf_loop(R1, &amp;callback, fp + context, 0)</c> (5.17+; <see cref="Features.KernelFeatures.HasBpfLoop"/>): the callback
/// (<see cref="InstructionBuilder.Subprogram"/>) gets the round in R1 and the context's address in R2, and ends the loop
/// by returning 1. The program then needs BTF func_info, which <see cref="Programs.BpfProgram.Load"/> gives it.
/// </summary>
public static class LoopCall
{
    /// <summary>Calls bpf_loop with the rounds already in R1 and the context in the stack slot <paramref name="context"/>. Clobbers R0–R5.</summary>
    public static InstructionBuilder Emit(InstructionBuilder code, string callback, short context) =>
        code.LoadFunction(Register.R2, callback)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, context)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.Loop);
}
