using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// A CPU's scratch value, as slices of one array value (found by the value's address and the CPU number) and as a
/// per-CPU array (looked up): run by the kernel on CPU-clock samples, each program finds its CPU's value, counts the
/// sample there and writes its CPU number; user space sums the counters.
/// </summary>
[Collection(CpuClockCollection.Name)]
public class CpuScratchTests
{
    private const int CountAt = 0, CpuAt = 8, ValueBytes = 100;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryCpuFindsItsOwnValueAndTheCountersSumExactly(bool perCpuArray)
    {
        KernelRequirement.EnsureRoot();
        var layout = CpuScratchLayout.For(ValueBytes, PossibleCpus.Count, perCpuArray);
        Assert.Equal(!perCpuArray, layout.Sliced);
        Assert.Equal(128, layout.Stride);
        using var map = BpfMap.Create(CpuScratchMap.Spec("t_scratch", layout, ValueBytes));
        using var total = BpfMap.Create(MapSpec.Array("t_total", 8, 1));
        var scratch = new CpuScratchMap(map, layout);

        var code = new InstructionBuilder();
        CpuScratch.EmitFind(code, "scratch", layout, Register.R6, "out");
        MapLookup.Increment(code, Register.R6, CountAt);
        code.Call(HelperFunction.GetSmpProcessorId)
            .StoreMem(MemorySize.DoubleWord, Register.R6, CpuAt, Register.R0)
            .LoadMapValue(Register.R1, "total")
            .Mov64(Register.R2, 1)
            .AtomicAdd64(Register.R1, 0, Register.R2)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        var bound = code.Assemble().BindMaps(new Dictionary<string, int> { ["scratch"] = map.Fd.Value, ["total"] = total.Fd.Value });
        using var program = BpfProgram.Load(ProgramSpec.Of("t_scratch", ProgramType.PerfEvent, bound));
        using (new BusyThread())
        using (CpuClockSampling.Attach(program, 499))
            Thread.Sleep(400);

        var totalValue = new byte[8];
        Assert.True(total.TryLookup(new byte[4], totalValue));
        var samples = BinaryPrimitives.ReadUInt64LittleEndian(totalValue);
        Assert.True(samples > 0);
        Assert.Equal(samples, scratch.SumCounter(CountAt));

        // Each CPU's value holds its own number (a value a CPU never touched stays zero).
        var value = new byte[map.UserValueSize];
        Assert.True(map.TryLookup(new byte[4], value));
        var stride = perCpuArray ? (ValueBytes + 7) / 8 * 8 : layout.Stride;
        for (var cpu = 0; cpu < layout.Cpus; cpu++)
        {
            var count = BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(cpu * stride + CountAt));
            var written = BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(cpu * stride + CpuAt));
            Assert.Equal(count == 0 ? 0UL : (ulong)cpu, written);
        }
    }

    [Fact]
    public void SlicesThatWouldNotFitOneValueFallBackToAPerCpuArray()
    {
        Assert.True(CpuScratchLayout.For(8384, 500, perCpuArray: false).Sliced);
        Assert.False(CpuScratchLayout.For(8384, 501, perCpuArray: false).Sliced);
        Assert.Equal(MapType.PerCpuArray, CpuScratchLayout.For(8384, 501, perCpuArray: false).Spec("s").Type);
        var sliced = CpuScratchLayout.For(8384, 2, perCpuArray: false).Spec("s");
        Assert.Equal((MapType.Array, 2u * 8384, 1u), (sliced.Type, sliced.ValueSize, sliced.MaxEntries));
        Assert.Throws<InvalidOperationException>(() => CpuScratchMap.Spec("s", CpuScratchLayout.For(8384, 2, false), 8385));
    }
}
