using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// The kernel side of the profiler: the stack-walking program on a CPU-clock event per CPU, the processes it
/// samples (added and removed while it runs) and the ring the samples come through. Nothing is written to
/// the sampled processes; they are only read, by the kernel, while one of their threads is on a CPU.
/// </summary>
public sealed class StackSampler : IDisposable
{
    private const int MaxProcesses = 4096;
    private readonly BpfMap _configs;
    private readonly BpfMap _threadStates;
    private readonly BpfMap _scratch;
    private readonly BpfMap? _nativeScratch;
    private readonly BpfMap _ring;
    private readonly BpfMap _programArray;
    private readonly BpfProgram _program;
    private readonly CpuClockSampling _sampling;
    private readonly OffCpuTracking? _offCpu;
    private readonly IDisposable? _threadExits;
    private readonly HashSet<int> _pids = [];

    /// <summary>The sched_switch program with its own scratch value and continuation array (tail calls stay within one program type).</summary>
    private sealed record OffCpuTracking(BpfMap Scratch, BpfMap? NativeScratch, BpfMap ProgramArray, BpfProgram Program, RawTracepointLink Link) : IDisposable
    {
        public void Dispose()
        {
            Link.Dispose();
            Program.Dispose();
            ProgramArray.Dispose();
            Scratch.Dispose();
            NativeScratch?.Dispose();
        }
    }

    private StackSampler(BpfMap configs, BpfMap threadStates, IDisposable? threadExits, BpfMap scratch, BpfMap? nativeScratch, BpfMap ring, BpfMap programArray, BpfProgram program, CpuClockSampling sampling, OffCpuTracking? offCpu, StackSamplerOptions options)
    {
        _threadExits = threadExits;
        _nativeScratch = nativeScratch;
        (_configs, _threadStates, _scratch, _ring, _programArray, _program, _sampling, _offCpu) = (configs, threadStates, scratch, ring, programArray, program, sampling, offCpu);
        Options = options;
        Reader = new RingBufferReader(ring);
    }

    public StackSamplerOptions Options { get; }

    /// <summary>Samples come out here as <see cref="StackSampleRecord"/>s.</summary>
    public RingBufferReader Reader { get; }

    /// <summary>Samples that landed on a thread of a sampled process.</summary>
    public ulong Samples => _scratch.SumPerCpuCounter(0, StackSampleProgram.SamplesCounterOffset);

    /// <summary>Records the ring could not take, samples and switches alike (counted in the kernel, never silent).</summary>
    public ulong Lost => _scratch.SumPerCpuCounter(0, StackSampleProgram.LostCounterOffset)
        + (_offCpu?.Scratch.SumPerCpuCounter(0, StackSampleProgram.LostCounterOffset) ?? 0);

    /// <summary>With <see cref="StackSamplerOptions.NativeStackBytes"/>: native stack copies the ring could not take (their samples keep their Python frames only).</summary>
    public ulong NativeLost => _nativeScratch is null ? 0 : _scratch.SumPerCpuCounter(0, StackWalkFragment.NativeLostOffset)
        + (_offCpu?.Scratch.SumPerCpuCounter(0, StackWalkFragment.NativeLostOffset) ?? 0);

    /// <summary>With <see cref="StackSamplerOptions.OffCpu"/>: switch-outs of sampled threads (each a walk).</summary>
    public ulong SwitchOuts => _offCpu?.Scratch.SumPerCpuCounter(0, StackSampleProgram.SamplesCounterOffset) ?? 0;

    /// <summary>With <see cref="StackSamplerOptions.OffCpu"/>: switch-ins of sampled threads.</summary>
    public ulong SwitchIns => _offCpu?.Scratch.SumPerCpuCounter(0, SchedSwitchProgram.SwitchInCounterOffset) ?? 0;

    public IReadOnlyCollection<int> Pids => _pids;

    public static StackSampler Start(StackSamplerOptions options)
    {
        if (options.MaxDepth is < 1 or > StackSampleProgram.MaxDepthLimit)
            throw new ArgumentOutOfRangeException(nameof(options), $"the stack depth must be between 1 and {StackSampleProgram.MaxDepthLimit}");
        if (options.Frequency is < 1 or > 100_000)
            throw new ArgumentOutOfRangeException(nameof(options), "the sampling rate must be between 1 and 100000 Hz");
        MemlockLimit.RemoveIfNeeded();
        var created = new List<IDisposable>();
        T Keep<T>(T item) where T : IDisposable { created.Add(item); return item; }
        try
        {
            var configs = Keep(BpfMap.Create(MapSpec.Hash("pp_walk_procs", 4, StackWalkConfig.Size, MaxProcesses)));
            // A cache of each thread's thread state: made as an LRU hash, its 65,536 entries took ~10 ms of the attach.
            var threadStates = Keep(BpfMap.Create(PerThreadMaps.Spec("pp_walk_tstates", 4, 8, 65536)));
            var threadExits = PerThreadMaps.AttachExitProgram("pp_walk_exit", PerThreadMaps.DeleteThreadEntry(threadStates.Fd.Value));
            if (threadExits is not null) Keep(threadExits);
            var scratch = Keep(BpfMap.Create(MapSpec.PerCpuArray("pp_walk_tmp", (uint)StackSampleProgram.ScratchValueSize(options.MaxDepth), 1)));
            var ring = Keep(BpfMap.Create(MapSpec.RingBuffer("pp_samples", (uint)options.RingBytes)));
            var programArray = Keep(BpfMap.Create(new MapSpec("pp_walk_next", MapType.ProgramArray, 4, 4, 1)));
            var codesSeen = Keep(BpfMap.Create(StackSampleProgram.CodesSeenSpec()));
            var nativeScratch = options.NativeStackBytes > 0 ? Keep(BpfMap.Create(StackSampleProgram.NativeScratchSpec(options.NativeStackBytes, options.KernelStack))) : null;
            var wakeup = options.RingBytes / 16;
            Dictionary<string, int> Maps(BpfMap ownScratch, BpfMap continuation, BpfMap? ownNativeScratch) => new()
            {
                [StackSampleMaps.NativeScratch] = ownNativeScratch?.Fd.Value ?? -1,
                [StackSampleMaps.Processes] = configs.Fd.Value,
                [StackSampleMaps.ThreadStates] = threadStates.Fd.Value,
                [StackSampleMaps.Scratch] = ownScratch.Fd.Value,
                [StackSampleMaps.Ring] = ring.Fd.Value,
                [StackSampleMaps.Continuation] = continuation.Fd.Value,
                [StackSampleMaps.CodesSeen] = codesSeen.Fd.Value,
            };
            var bytecode = StackSampleProgram.Build(options.MaxDepth, wakeup, options.NativeStackBytes, options.KernelStack).BindMaps(Maps(scratch, programArray, nativeScratch));
            var program = Keep(BpfProgram.Load(ProgramSpec.Of("pp_stack_walk", ProgramType.PerfEvent, bytecode)));
            programArray.Update(BitConverter.GetBytes(0), BitConverter.GetBytes(program.Fd.Value));

            OffCpuTracking? offCpu = null;
            if (options.OffCpu)
            {
                // The BTF is read here anyway; the fsbase offset asked for in the same read keeps AddProcess quick
                // (answered from the process's cache), which the off-CPU spans opened just before it rely on.
                var offsets = KernelBtf.VmlinuxMemberOffsets("task_struct.pid", "task_struct.tgid", "task_struct.thread.fsbase");
                var task = new TaskIdOffsets(offsets[0], offsets[1]);
                var offScratch = Keep(BpfMap.Create(MapSpec.PerCpuArray("pp_switch_tmp", (uint)StackSampleProgram.ScratchValueSize(options.MaxDepth), 1)));
                var offArray = Keep(BpfMap.Create(new MapSpec("pp_switch_next", MapType.ProgramArray, 4, 4, 1)));
                // Its own native scratch too: the two programs' copies are put together apart.
                var offNative = options.NativeStackBytes > 0 ? Keep(BpfMap.Create(StackSampleProgram.NativeScratchSpec(options.NativeStackBytes, options.KernelStack))) : null;
                var switchCode = SchedSwitchProgram.Build(options.MaxDepth, wakeup, task, options.NativeStackBytes, options.KernelStack).BindMaps(Maps(offScratch, offArray, offNative));
                var switchProgram = Keep(BpfProgram.Load(ProgramSpec.Of("pp_switch_walk", ProgramType.RawTracepoint, switchCode)));
                offArray.Update(BitConverter.GetBytes(0), BitConverter.GetBytes(switchProgram.Fd.Value));
                var link = Keep(RawTracepointLink.Attach(switchProgram, SchedSwitchProgram.Tracepoint));
                offCpu = new OffCpuTracking(offScratch, offNative, offArray, switchProgram, link);
            }
            var sampling = CpuClockSampling.Attach(program, options.Frequency);
            return new StackSampler(configs, threadStates, threadExits, scratch, nativeScratch, ring, programArray, program, sampling, offCpu, options);
        }
        catch
        {
            for (var i = created.Count - 1; i >= 0; i--) created[i].Dispose();
            throw;
        }
    }

    /// <summary>Starts sampling <paramref name="pid"/> (a host pid) with the walk its interpreter needs.</summary>
    /// <exception cref="BtfException">The walk needs a kernel offset and the kernel has no BTF.</exception>
    public void AddProcess(int pid, StackWalkConfig config)
    {
        if (config.MatchByFsBase)
        {
            config = config with { TaskFsBase = (uint)KernelBtf.VmlinuxMemberOffset("task_struct.thread.fsbase") };
        }
        _configs.Update(BitConverter.GetBytes(pid), config.ToBytes());
        _pids.Add(pid);
    }

    /// <summary>Stops sampling a process (it exited, or the user narrowed the set).</summary>
    public void RemoveProcess(int pid)
    {
        _configs.Delete(BitConverter.GetBytes(pid));
        _pids.Remove(pid);
    }

    /// <summary>Closes the CPU-clock events and the sched_switch link: no more records are made, what is in the ring stays readable.</summary>
    public void StopSampling()
    {
        _sampling.Dispose();
        _offCpu?.Link.Dispose();
    }

    public void Dispose()
    {
        // The events first, so no sample runs against maps being closed.
        _sampling.Dispose();
        _offCpu?.Dispose();
        Reader.Dispose();
        _program.Dispose();
        _programArray.Dispose();
        _ring.Dispose();
        _scratch.Dispose();
        _nativeScratch?.Dispose();
        _threadExits?.Dispose();
        _threadStates.Dispose();
        _configs.Dispose();
    }
}
