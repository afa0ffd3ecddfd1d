using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// PidFilter with the processes compared as constants (no map): CPU-clock samples of a spinning thread of this process
/// are counted when its tgid is among the constants, never when it is not. The tid filter keeps other threads out.
/// </summary>
[Collection(CpuClockCollection.Name)]
public class PidFilterTests
{
    [Theory]
    [InlineData(true, false)]  // this process alone
    [InlineData(true, true)]   // this process among others
    [InlineData(false, true)]  // other processes only (init and kthreadd)
    public void SamplesCountOnlyWhenTheTgidIsOneOfTheConstants(bool includeSelf, bool includeOthers)
    {
        KernelRequirement.EnsureRoot();
        using var busy = new BusyThread();
        List<int> tgids = [.. includeOthers ? new[] { 1, 2 } : [], .. includeSelf ? new[] { Environment.ProcessId } : []];
        using var counter = BpfMap.Create(MapSpec.Array("t_pfcount", 8, 1));
        var code = new InstructionBuilder();
        code.Call(HelperFunction.GetCurrentPidTgid).Mov64(Register.R7, Register.R0);
        PidFilter.Emit(code, Register.R7, targetsMap: "unused", [busy.Tid], "out", tgids);
        code.LoadMapValue(Register.R1, counter.Fd.Value, 0).Mov64(Register.R2, 1).AtomicAdd64(Register.R1, 0, Register.R2);
        var program = code.Label("out").Mov64(Register.R0, 0).Exit().Assemble();
        Assert.Empty(program.MapNames); // the constants replace the map
        using var loaded = BpfProgram.Load(ProgramSpec.Of("t_pidconst", ProgramType.PerfEvent, program));
        var value = new byte[8];
        using (CpuClockSampling.Attach(loaded, 999))
        {
            var deadline = DateTime.UtcNow.AddSeconds(includeSelf ? 20 : 0.5);
            do Thread.Sleep(50);
            while (DateTime.UtcNow < deadline && (!counter.TryLookup(new byte[4], value) || BinaryPrimitives.ReadUInt64LittleEndian(value) == 0));
        }
        Assert.True(counter.TryLookup(new byte[4], value));
        if (includeSelf) Assert.InRange(BinaryPrimitives.ReadUInt64LittleEndian(value), 1UL, ulong.MaxValue);
        else Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(value));
    }
}
