namespace Pyprobe.Python.Sessions;

/// <summary>
/// Maps keyed by thread (an activation stack's depths and frames, <c>calls</c>' thread stacks, the sampler's thread states). Where the kernel lets
/// probe programs use them (6.1+) they are hashes that grow as threads use them, and a program on sched_process_exit
/// deletes a thread's entries when it ends; otherwise LRU hashes, which recycle the least recently used entry but write
/// every element when made: 2^18 frames took 40–50 ms and calls' 4,096 thread stacks 27–36 ms of attach on a VM, most
/// of <c>calls -p</c>'s launch.
/// </summary>
public static class PerThreadMaps
{
    /// <summary>Growing hashes, cleared at thread exit (needs bpf_loop for a thread's frames too).</summary>
    public static bool Growing => KernelFeatures.HasGrowingMaps && KernelFeatures.HasBpfLoop;

    /// <summary>A map keyed by thread: growing where it can, else LRU.</summary>
    public static MapSpec Spec(string name, uint keySize, uint valueSize, uint maxEntries) =>
        Growing ? MapSpec.GrowingHash(name, keySize, valueSize, maxEntries) : new MapSpec(name, MapType.LruHash, keySize, valueSize, maxEntries);

    /// <summary>A map of the session keyed by thread (<see cref="Spec"/>).</summary>
    public static BpfMap Create(SessionCore core, string name, uint keySize, uint valueSize, uint maxEntries) =>
        core.AddMap(Spec(name, keySize, valueSize, maxEntries));

    /// <summary>
    /// Runs <paramref name="program"/> at every thread's exit (raw tracepoint sched_process_exit) until the returned link
    /// is disposed; null when the maps do not grow (LRU maps recycle by themselves).
    /// </summary>
    public static IDisposable? AttachExitProgram(string name, AssembledProgram program)
    {
        if (!Growing) return null;
        using var loaded = BpfProgram.Load(ProgramSpec.Of(name, ProgramType.RawTracepoint, program));
        return RawTracepointLink.Attach(loaded, "sched_process_exit");
    }

    /// <summary><see cref="AttachExitProgram"/> for as long as the session.</summary>
    public static void ClearOnExit(SessionCore core, string name, AssembledProgram program)
    {
        if (AttachExitProgram(name, program) is { } link) core.AddSessionLink(link);
    }

    /// <summary>The exit program for a map keyed by a u32 thread id: deletes the exiting thread's entry.</summary>
    public static AssembledProgram DeleteThreadEntry(int mapFd)
    {
        const short tid = -4;
        return new InstructionBuilder()
            .Call(HelperFunction.GetCurrentPidTgid)
            .StoreMem(MemorySize.Word, Register.FramePointer, tid, Register.R0)
            .LoadMapFd(Register.R1, mapFd)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, tid)
            .Call(HelperFunction.MapDeleteElem)
            .Mov64(Register.R0, 0)
            .Exit()
            .Assemble();
    }
}
