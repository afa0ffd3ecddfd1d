using System.Diagnostics;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

[Collection(CpuClockCollection.Name)]
public class CpuClockSamplingTests
{
    private const int Frequency = 999;

    /// <summary>
    /// Counts every sample in slot 0 of a per-CPU array, and samples of thread <paramref name="tid"/> in slot 1.
    /// </summary>
    private static BpfProgram CountingProgram(BpfMap counts, int tid)
    {
        const short key = -4;
        var code = new InstructionBuilder()
            .Call(HelperFunction.GetCurrentPidTgid)
            .Mov64(Register.R6, Register.R0)
            .StoreImm(MemorySize.Word, Register.FramePointer, key, 0)
            .LoadMapFd(Register.R1, counts.Fd.Value)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(Register.R1, 1)
            .AtomicAdd64(Register.R0, 0, Register.R1)
            .JumpIf32(JumpCondition.NotEqual, Register.R6, tid, "out")
            .StoreImm(MemorySize.Word, Register.FramePointer, key, 1)
            .LoadMapFd(Register.R1, counts.Fd.Value)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Call(HelperFunction.MapLookupElem)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(Register.R1, 1)
            .AtomicAdd64(Register.R0, 0, Register.R1)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit()
            .Assemble();
        return BpfProgram.Load(new ProgramSpec("t_clock", ProgramType.PerfEvent, code.Bytecode));
    }

    private static ulong[] PerCpu(BpfMap map, uint index)
    {
        var value = new byte[map.UserValueSize];
        Assert.True(map.TryLookup(BitConverter.GetBytes(index), value));
        return Enumerable.Range(0, PossibleCpus.Count).Select(cpu => BitConverter.ToUInt64(value, 8 * cpu)).ToArray();
    }

    [Fact]
    public void SamplesEveryOnlineCpuAtTheAskedRateAndSeesTheBusyThread()
    {
        KernelRequirement.EnsureRoot();
        using var counts = BpfMap.Create(MapSpec.PerCpuArray("t_clock_n", 8, 2));
        using var busy = new BusyThread();
        using var program = CountingProgram(counts, busy.Tid);

        var sampling = CpuClockSampling.Attach(program, Frequency);
        Assert.Equal(CpuList.Online, sampling.Cpus);

        // The CPU clock is a timer: every online CPU is sampled ~999 times a second, busy or idle — less while this VM's
        // CPUs are not running at all, which this guest cannot see (its steal time reads 0): CI runs on a loaded host
        // saw 346 and 173 a second. So the rate is taken over one-second windows, and one window of three must show
        // every CPU at the asked rate; a sampler at a wrong frequency fails all three, and none may go over it.
        var lowest = double.MaxValue;
        var start = PerCpu(counts, 0);
        for (var window = 0; window < 3; window++)
        {
            var clock = Stopwatch.StartNew();
            Thread.Sleep(1000);
            var end = PerCpu(counts, 0);
            var seconds = clock.Elapsed.TotalSeconds;
            var rates = sampling.Cpus.Select(cpu => (end[cpu] - start[cpu]) / seconds).ToArray();
            foreach (var rate in rates)
                Assert.InRange(rate, 0, 1500);
            lowest = rates.Min();
            start = end;
            if (lowest >= 300)
                break;
        }
        Assert.InRange(lowest, 300, 1500);
        var all = PerCpu(counts, 0);
        var busySamples = PerCpu(counts, 1).Sum(n => (long)n);
        // The spinning thread is on a CPU most of the time (the machine is shared, so not all of it).
        Assert.InRange(busySamples, 100, (long)all.Sum(n => (long)n));

        sampling.Dispose();
        var after = PerCpu(counts, 0).Sum(n => (long)n);
        Thread.Sleep(300);
        Assert.Equal(after, PerCpu(counts, 0).Sum(n => (long)n));
    }

    [Fact]
    public void AKprobeProgramIsRefused()
    {
        KernelRequirement.EnsureRoot();
        var code = new InstructionBuilder().Mov64(Register.R0, 0).Exit().Assemble();
        using var program = BpfProgram.Load(new ProgramSpec("t_kp", ProgramType.Kprobe, code.Bytecode));
        var error = Assert.Throws<ArgumentException>(() => CpuClockSampling.Attach(program, Frequency));
        Assert.Contains("perf-event programs", error.Message);
    }

    [Theory]
    [InlineData("0-1\n", new[] { 0, 1 })]
    [InlineData("0,2-3", new[] { 0, 2, 3 })]
    [InlineData("5", new[] { 5 })]
    public void CpuListsAreParsed(string text, int[] expected) => Assert.Equal(expected, CpuList.Parse(text));
}
