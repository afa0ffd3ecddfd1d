using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Maps;

namespace Pyprobe.Bpf.Emit;

/// <summary>Finds this CPU's scratch value (<see cref="CpuScratchLayout"/>).</summary>
public static class CpuScratch
{
    /// <summary>
    /// <paramref name="dst"/> = this CPU's scratch value in <paramref name="map"/>, or jump to <paramref name="missing"/>
    /// (a per-CPU array's lookup cannot fail; a CPU number past the slices cannot occur). Clobbers R0–R5.
    /// </summary>
    public static void EmitFind(InstructionBuilder code, string map, CpuScratchLayout layout, Register dst, string missing)
    {
        if (!layout.Sliced)
        {
            MapLookup.Emit(code, map, MapLookup.ZeroKey(code), missing)
                .Mov64(dst, Register.R0);
            return;
        }
        code.Call(HelperFunction.GetSmpProcessorId)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R0, layout.Cpus, missing)
            .Mul64(Register.R0, layout.Stride)
            .LoadMapValue(dst, map)
            .Add64(dst, Register.R0);
    }
}
