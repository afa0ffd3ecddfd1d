namespace Pyprobe.Python.Sampling;

/// <summary>The names under which the stack-walking program refers to its maps (bound to fds at load).</summary>
public static class StackSampleMaps
{
    /// <summary>Hash pid (u32) → <see cref="StackWalkConfig"/>: which processes are sampled, and how to walk each.</summary>
    public const string Processes = "processes";
    /// <summary>Hash tid (u32) → thread state address (u64): the last thread-list walk's answer, checked before use (<see cref="Sessions.PerThreadMaps"/>).</summary>
    public const string ThreadStates = "thread_states";
    /// <summary>Per-CPU array, one entry of <see cref="StackSampleProgram.ScratchValueSize"/> bytes.</summary>
    public const string Scratch = "scratch";
    /// <summary>Ring buffer the samples go to.</summary>
    public const string Ring = "ring";
    /// <summary>Program array whose entry 0 is this program itself: deep stacks are walked in several runs.</summary>
    public const string Continuation = "continuation";
    /// <summary>Array of <see cref="StackWalkFragment.CodesSeenEntries"/> (code object, pid, first line): the code objects already copied to user space.</summary>
    public const string CodesSeen = "codes_seen";
    /// <summary>Per-CPU array, one entry of <see cref="StackWalkFragment.NativeScratchValueSize"/> bytes: where <c>--native</c>'s stack copy is put together.</summary>
    public const string NativeScratch = "native_scratch";
}

/// <summary>
/// Generates the perf-event program that walks the interrupted thread's Python stack (CPU time): for a
/// CPU-clock sample in a configured process it runs the shared walk (<see cref="StackWalkFragment"/>) and sends
/// one record per sample.
/// </summary>
public static class StackSampleProgram
{
    public const int SamplesCounterOffset = StackWalkFragment.SamplesCounterOffset;
    public const int LostCounterOffset = StackWalkFragment.LostCounterOffset;

    /// <summary>Frames one run of the program steps through before it tail-calls itself to go on.</summary>
    public const int StepsPerCall = StackWalkFragment.StepsPerCall;

    /// <summary>Deepest walk offered: the per-CPU scratch value (≤ 32 KiB) holds the record, and 33 tail calls × <see cref="StepsPerCall"/> steps reach it.</summary>
    public const int MaxDepthLimit = StackWalkFragment.MaxDepthLimit;

    public static int ScratchValueSize(int maxDepth) => StackWalkFragment.ScratchValueSize(maxDepth);

    /// <summary>The table of code objects already copied (<see cref="StackSampleMaps.CodesSeen"/>), shared by both walkers.</summary>
    public static MapSpec CodesSeenSpec() => MapSpec.Array("pp_walk_codes", StackWalkFragment.CodesSeenValueSize, StackWalkFragment.CodesSeenEntries);

    /// <summary>The native stack copied per sample with <c>--native</c>: enough for the C frames between a thread's start and
    /// its innermost Python frame, and the library calls below it, in all but very deep C recursion (3.8–3.10 recurse in C once
    /// per Python call: a few hundred bytes each).</summary>
    public const int DefaultNativeStackBytes = 16 * 1024;

    public static MapSpec NativeScratchSpec(int nativeStackBytes, bool kernelStack = false) =>
        MapSpec.PerCpuArray("pp_native_tmp", (uint)StackWalkFragment.NativeScratchValueSize(nativeStackBytes, kernelStack), 1);

    /// <param name="maxDepth">Python frames kept per sample; a deeper stack keeps its innermost frames and is flagged truncated.</param>
    /// <param name="nativeStackBytes">With <c>--native</c>, the thread's registers and this much of its stack go ahead of each sample; 0 for none.</param>
    /// <param name="kernelStack">With <c>--kernel</c>: the kernel's frames go in the native record too.</param>
    public static AssembledProgram Build(int maxDepth, int wakeupThreshold, int nativeStackBytes = 0, bool kernelStack = false)
    {
        if (maxDepth is < 1 or > MaxDepthLimit) throw new ArgumentOutOfRangeException(nameof(maxDepth), $"between 1 and {MaxDepthLimit} frames");
        var code = new InstructionBuilder();
        var slots = StackWalkFragment.Slots.Allocate(code);

        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, slots.Context, Register.R1);
        StackWalkFragment.EmitScratchLookup(code, slots, "out");
        // Only processes that are configured: the first test for every other sample on the machine. A process
        // removed while a tail call carried its walk leaves no stale walk behind.
        StackWalkFragment.EmitSampleIfConfigured(code, slots, maxDepth, wakeupThreshold, StackSampleFlags.None, nativeStackBytes, kernelStack);
        return code.Assemble();
    }
}
