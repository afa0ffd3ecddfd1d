using Pyprobe.Bpf.Btf;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>Both stack walkers (CPU-clock and sched_switch) pass the kernel's verifier at every depth the profiler offers.</summary>
public class StackSampleProgramLoadTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(128, 0)]
    [InlineData(StackSampleProgram.MaxDepthLimit, 0)]
    [InlineData(1, StackSampleProgram.DefaultNativeStackBytes)]
    [InlineData(512, StackSampleProgram.DefaultNativeStackBytes)]
    [InlineData(StackSampleProgram.MaxDepthLimit, 24 * 1024)]
    public void TheVerifierAcceptsTheWalker(int maxDepth, int nativeStackBytes)
    {
        Requirements.EnsureRoot();
        using var native = BpfMap.Create(StackSampleProgram.NativeScratchSpec(Math.Max(nativeStackBytes, 4096)));
        using var config = BpfMap.Create(MapSpec.Hash("pp_walk_cfg", 4, StackWalkConfig.Size, 64));
        using var threads = BpfMap.Create(new MapSpec("pp_tstates", MapType.LruHash, 4, 8, 4096));
        using var scratch = BpfMap.Create(MapSpec.PerCpuArray("pp_walk_tmp", (uint)StackSampleProgram.ScratchValueSize(maxDepth), 1));
        using var ring = BpfMap.Create(MapSpec.RingBuffer("pp_samples", 1 << 20));
        using var programs = BpfMap.Create(new MapSpec("pp_walk_next", MapType.ProgramArray, 4, 4, 1));
        using var codes = BpfMap.Create(StackSampleProgram.CodesSeenSpec());
        var assembled = StackSampleProgram.Build(maxDepth, wakeupThreshold: 1 << 16, nativeStackBytes).BindMaps(new Dictionary<string, int>
        {
            [StackSampleMaps.NativeScratch] = native.Fd.Value,
            [StackSampleMaps.Processes] = config.Fd.Value,
            [StackSampleMaps.ThreadStates] = threads.Fd.Value,
            [StackSampleMaps.Scratch] = scratch.Fd.Value,
            [StackSampleMaps.Ring] = ring.Fd.Value,
            [StackSampleMaps.Continuation] = programs.Fd.Value,
            [StackSampleMaps.CodesSeen] = codes.Fd.Value,
        });
        using var program = BpfProgram.Load(ProgramSpec.Of("pp_stack_walk", ProgramType.PerfEvent, assembled));
        Assert.True(program.Fd.Value > 0);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(128, 0)]
    [InlineData(StackSampleProgram.MaxDepthLimit, 0)]
    [InlineData(512, StackSampleProgram.DefaultNativeStackBytes)]
    public void TheVerifierAcceptsTheSchedSwitchWalkerAndItAttaches(int maxDepth, int nativeStackBytes)
    {
        Requirements.EnsureRoot();
        var btf = KernelBtf.LoadVmlinux();
        var task = new TaskIdOffsets(btf.MemberOffset("task_struct", "pid"), btf.MemberOffset("task_struct", "tgid"));
        Assert.Equal(task.Pid + 4, task.Tgid);
        using var config = BpfMap.Create(MapSpec.Hash("pp_walk_cfg", 4, StackWalkConfig.Size, 64));
        using var threads = BpfMap.Create(new MapSpec("pp_tstates", MapType.LruHash, 4, 8, 4096));
        using var scratch = BpfMap.Create(MapSpec.PerCpuArray("pp_switch_tmp", (uint)StackSampleProgram.ScratchValueSize(maxDepth), 1));
        using var ring = BpfMap.Create(MapSpec.RingBuffer("pp_samples", 1 << 20));
        using var programs = BpfMap.Create(new MapSpec("pp_switch_next", MapType.ProgramArray, 4, 4, 1));
        using var codes = BpfMap.Create(StackSampleProgram.CodesSeenSpec());
        using var native = BpfMap.Create(StackSampleProgram.NativeScratchSpec(Math.Max(nativeStackBytes, 4096)));
        var assembled = SchedSwitchProgram.Build(maxDepth, wakeupThreshold: 1 << 16, task, nativeStackBytes).BindMaps(new Dictionary<string, int>
        {
            [StackSampleMaps.NativeScratch] = native.Fd.Value,
            [StackSampleMaps.Processes] = config.Fd.Value,
            [StackSampleMaps.ThreadStates] = threads.Fd.Value,
            [StackSampleMaps.Scratch] = scratch.Fd.Value,
            [StackSampleMaps.Ring] = ring.Fd.Value,
            [StackSampleMaps.Continuation] = programs.Fd.Value,
            [StackSampleMaps.CodesSeen] = codes.Fd.Value,
        });
        using var program = BpfProgram.Load(ProgramSpec.Of("pp_switch_walk", ProgramType.RawTracepoint, assembled));
        using var link = RawTracepointLink.Attach(program, SchedSwitchProgram.Tracepoint);
        // Nothing is configured: context switches run it and it sends nothing.
        Thread.Sleep(50);
        Assert.Equal(0UL, scratch.SumPerCpuCounter(0, StackSampleProgram.SamplesCounterOffset));
    }
}
