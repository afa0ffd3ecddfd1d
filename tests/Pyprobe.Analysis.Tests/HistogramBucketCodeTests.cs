using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Kernel;
using Pyprobe.Python.Analysis;

namespace Pyprobe.Analysis.Tests;

/// <summary>
/// The bucket the kernel files a call's duration in is the one user space reads it back from: the generated code
/// (<see cref="HistogramBucketCode"/>, branch-free floor(log2)) runs in the kernel through BPF_PROG_TEST_RUN for every
/// bucket's bounds, both sides of every power of two, the histogram's top and random durations, and must give
/// <see cref="CallStatsLayout.BucketIndex"/> each time.
/// </summary>
public class HistogramBucketCodeTests
{
    [Fact]
    public void TheKernelFilesEveryDurationInTheBucketUserSpaceReads()
    {
        AnalysisRequirements.EnsureRoot();
        using var input = BpfMap.Create(MapSpec.Array("t_bucket_in", 8, 1));
        using var output = BpfMap.Create(MapSpec.Array("t_bucket_out", 8, 1));
        var code = new InstructionBuilder()
            .LoadMapValue(Register.R6, input.Fd.Value, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R6, 0);
        HistogramBucketCode.Emit(code)
            .LoadMapValue(Register.R2, output.Fd.Value, 0)
            .StoreMem(MemorySize.DoubleWord, Register.R2, 0, Register.R3)
            .Mov64(Register.R0, 2)
            .Exit();
        using var program = BpfProgram.Load(new ProgramSpec("t_bucket", XdpTestRun.Type, code.Assemble().Bytecode));

        var durations = new List<ulong> { 0, ulong.MaxValue, ulong.MaxValue - 1 };
        for (ulong d = 0; d < 300; d++) durations.Add(d);
        for (var bit = 0; bit < 64; bit++)
        {
            var power = 1UL << bit;
            durations.AddRange([power - 1, power, power + 1, power | (power >> 1), power | (power >> 2)]);
        }
        for (var i = 0; i < CallStatsLayout.BucketCount - 1; i++)
            durations.AddRange([CallStatsLayout.BucketLowerBound(i), CallStatsLayout.BucketUpperBound(i) - 1]);
        var random = new Random(12);
        for (var i = 0; i < 500; i++) durations.Add((ulong)random.NextInt64() >> random.Next(0, 63));

        foreach (var duration in durations.Distinct())
            Assert.Equal((duration, CallStatsLayout.BucketIndex(duration)), (duration, (int)Run(program, input, output, duration)));
    }

    private static ulong Run(BpfProgram program, BpfMap input, BpfMap output, ulong duration)
    {
        var value = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(value, duration);
        input.Update(new byte[4], value);
        XdpTestRun.Run(program.Fd.Value);
        var result = new byte[8];
        Assert.True(output.TryLookup(new byte[4], result));
        return BinaryPrimitives.ReadUInt64LittleEndian(result);
    }
}
