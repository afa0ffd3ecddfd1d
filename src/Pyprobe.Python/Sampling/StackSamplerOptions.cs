namespace Pyprobe.Python.Sampling;

/// <summary>How often and how deep the sampler looks; the factories are what each use of the sampler asks for.</summary>
/// <param name="Frequency">Samples per second per CPU.</param>
/// <param name="MaxDepth">Python frames kept per sample (innermost first); deeper stacks are flagged truncated.</param>
/// <param name="RingBytes">Ring buffer between the kernel and the reader.</param>
/// <param name="OffCpu">Also walk each sampled thread's stack when it leaves its CPU and note when it comes back (wall-clock, <c>--idle</c>).</param>
/// <param name="RunningTask">Each sample carries the asyncio task its thread runs (<c>--tasks</c>): from 3.14 the thread
/// state's <c>asyncio_running_task</c>, before 3.14 the outermost coroutine on the stack, in the record's thread-state
/// slot, with a copy of the task's name (<see cref="TaskSnapshot"/>).</param>
/// <param name="GilOnly">Tell in the kernel whether each sampled thread holds the GIL, and keep only the samples that do (<c>--gil</c>).</param>
/// <param name="GilState">Tell in the kernel whether each sampled thread holds the GIL, and count per stack the samples that did (a sampling top's %GIL); the process whose version does not say is sampled without.</param>
/// <param name="NativeStackBytes">With <c>--native</c>: the thread's registers and this much of its stack go ahead of each CPU sample; 0 for none.</param>
/// <param name="KernelStack">With <c>--kernel</c> (and a native copy): the kernel's frames go with it.</param>
public sealed record StackSamplerOptions(int Frequency = StackSamplerOptions.DefaultFrequency, int MaxDepth = 512, int RingBytes = 8 << 20, bool OffCpu = false,
    bool GilOnly = false, int NativeStackBytes = 0, bool GilState = false, bool KernelStack = false, bool RunningTask = false)
{
    /// <summary>The rate when none is asked for (record, top): 99 Hz stays clear of the kernel's own timer multiples.</summary>
    public const int DefaultFrequency = 99;

    /// <summary>The highest rate the commands accept.</summary>
    public const int MaxFrequency = 20_000;

    /// <summary>
    /// A profile (record): whole stacks up to <paramref name="maxDepth"/> frames; with <paramref name="offCpu"/> a wall-clock one,
    /// with <paramref name="gilOnly"/> only the samples of threads holding the GIL.
    /// </summary>
    /// With <paramref name="native"/>, each sample's native stack too.
    /// With <paramref name="kernel"/>, the kernel's frames under them (a native stack implied).
    public static StackSamplerOptions Profile(int frequency, int maxDepth, bool offCpu, bool gilOnly = false, bool native = false, bool kernel = false, bool tasks = false) =>
        new(frequency, maxDepth, OffCpu: offCpu, GilOnly: gilOnly, NativeStackBytes: native || kernel ? StackSampleProgram.DefaultNativeStackBytes : 0, KernelStack: kernel, RunningTask: tasks);

    /// <summary>
    /// Own and total shares per function (a sampling top): whole stacks, 256 frames deep, which a table of functions never
    /// outgrows, and whether each sample's thread held the GIL.
    /// </summary>
    /// With <paramref name="native"/>, each sample's C frames too, which become rows of their own.
    /// With <paramref name="kernel"/>, the kernel's frames under them.
    /// With <paramref name="tasks"/>, the asyncio task each sample was taken in (a sampling top of tasks).
    public static StackSamplerOptions FunctionShares(int frequency, bool native = false, bool kernel = false, bool tasks = false) =>
        new(frequency, MaxDepth: 256, GilState: true, NativeStackBytes: native || kernel ? StackSampleProgram.DefaultNativeStackBytes : 0, KernelStack: kernel, RunningTask: tasks);

    /// <summary>Samples counted by the function running (serve's CPU counter): the innermost frame only, through a small ring.</summary>
    public static StackSamplerOptions InnermostFrame(int frequency) => new(frequency, MaxDepth: 1, RingBytes: 1 << 20);
}
