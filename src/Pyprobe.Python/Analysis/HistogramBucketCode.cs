using static Pyprobe.Python.Analysis.CallStatsLayout;

namespace Pyprobe.Python.Analysis;

/// <summary>
/// A duration's histogram bucket (<see cref="CallStatsLayout.BucketIndex"/>) computed in BPF. floor(log2) comes from six
/// halving steps without a branch: each turns "some bit is set above this step" into 0 or 1 by arithmetic and shifts by
/// that much, so the verifier walks one path. The binary search it replaces branched at every step, and the verifier,
/// which knew each path's exponent exactly, walked all 64 paths: ~2,500 of the 3,891 instructions it processed for the
/// eval-frame return program of <c>calls</c>.
/// </summary>
public static class HistogramBucketCode
{
    /// <summary>
    /// Leaves in R3 the bucket index (bounded to the histogram) of the duration in R1, which is kept. Clobbers R2, R4, R5.
    /// </summary>
    public static InstructionBuilder Emit(InstructionBuilder code)
    {
        // R5 = 2^32 - 1 (a 32-bit move zero-extends): x + R5 carries into bit 32 exactly when x (below 2^32) is not 0.
        code.Mov32(Register.R5, -1)
            .Mov64(Register.R3, Register.R1).Mov64(Register.R2, 0);
        foreach (var (step, stepLog2) in new[] { (32, 5), (16, 4), (8, 3), (4, 2), (2, 1), (1, 0) })
        {
            code.Mov64(Register.R4, Register.R3).Rsh64(Register.R4, step)
                .Add64(Register.R4, Register.R5).Rsh64(Register.R4, 32);
            if (stepLog2 > 0) code.Lsh64(Register.R4, stepLog2);
            code.Rsh64(Register.R3, Register.R4).Add64(Register.R2, Register.R4);
        }
        // R2 = floor(log2(d)) for d > 0; then 2 more bits below the top one pick the sub-bucket.
        var labels = code.Scope("bucket");
        string ready = labels["ready"], bounded = labels["bounded"];
        return code.Mov64(Register.R3, Register.R1)
            .JumpIf(JumpCondition.Less, Register.R1, 4, ready)
            .Mov64(Register.R3, BucketCount - 1)
            .JumpIf(JumpCondition.Greater, Register.R2, HighestExponent, ready)
            .Mov64(Register.R4, Register.R2).Sub64(Register.R4, SubBucketsLog2)
            .Mov64(Register.R3, Register.R1).Rsh64(Register.R3, Register.R4).And64(Register.R3, 3)
            .Lsh64(Register.R2, 2).Sub64(Register.R2, 4).Add64(Register.R3, Register.R2)
            .Label(ready)
            .JumpIf(JumpCondition.LessOrEqual, Register.R3, BucketCount - 1, bounded)
            .Mov64(Register.R3, BucketCount - 1)
            .Label(bounded);
    }
}
