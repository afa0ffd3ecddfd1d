using Pyprobe.Python.Processes;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Sampling;
using Pyprobe.Python.Threads;
using Pyprobe.Usdt;
using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Python.Stacks;

/// <summary>
/// A Python thread: kernel tid as this machine's /proc knows it (0 when unknown), name (the threading.Thread's, else the kernel's), GIL state where knowable,
/// whether the kernel has it running (state R: on a CPU or waiting for one; null when unknown), frames innermost first,
/// and with <c>--locals</c> each frame's local variables (in the order of <see cref="Frames"/>).
/// </summary>
public sealed record ThreadStack(int Tid, string Name, bool? HoldsGil, IReadOnlyList<StackFrame> Frames, IReadOnlyList<IReadOnlyList<LocalVariable>>? Locals = null,
    bool? Running = null);

/// <summary>
/// Reads the Python stacks of a live process through its runtime model and /proc/PID/mem, read
/// only, every walk bounded. Names and lines are resolved the way the sampling profiler will:
/// from (code object, instruction offset) through the version's line table.
/// </summary>
public sealed class StackReader(CPythonProcess process)
{
    public const int MaxFrames = 1024;
    // glibc x86-64: struct pthread.tid (after the 0x2c0-byte tcbhead and the list node); used before 3.11, which has no native_thread_id.
    private const int GlibcPthreadTid = 0x2d0;

    private readonly CodeObjectReader _codes = new(process);
    private RuntimeLayout L => process.Layout;
    private ProcessMemory M => process.Memory;

    /// <summary>Native frames unwound per thread at most by <c>dump --native</c>.</summary>
    public const int MaxNativeFrames = 1024;

    /// <summary>How long the last <see cref="ReadAll"/> with native stacks held the process still.</summary>
    public TimeSpan? Paused { get; private set; }

    /// <summary>
    /// Every thread of every interpreter; with <paramref name="locals"/> each frame's local variables too; with
    /// <paramref name="native"/> each thread's C frames merged in (<see cref="MixedStack"/>), which holds the process still
    /// (<see cref="PausedProcess"/>) while its Python stacks, registers and native stacks are read.
    /// </summary>
    public IReadOnlyList<ThreadStack> ReadAll(bool locals = false, bool native = false)
    {
        if (!native) return ReadThreads(locals, ThreadContext.Read(process), null, null);
        // The maps and the interpreter's symbols are read before the process is held; the unwinding after it is let go.
        var code = new NativeCode(process);
        var context = ThreadContext.Read(process);
        var copies = new Dictionary<int, NativeCopy>();
        IReadOnlyList<ThreadStack> threads;
        var paused = PausedProcess.Pause(process.Pid);
        try
        {
            threads = ReadThreads(locals, context, paused, copies);
        }
        finally
        {
            paused.Dispose();
            Paused = paused.Duration;
        }
        var counters = new ulong[MaxNativeFrames];
        var frames = new List<NativeFrame>();
        return threads.Select(thread =>
        {
            if (!copies.TryGetValue(thread.Tid, out var copy)) return thread;
            var stop = code.Unwind(copy.Registers.Ip, copy.Registers.Sp, copy.Registers.Bp, copy.Stack, counters, frames);
            var merged = new List<StackFrame>();
            MixedStack.Merge(thread.Frames, copy.StartsRun, frames, merged, reachedEnd: stop == NativeUnwindStop.Complete);
            return thread with { Frames = merged, Locals = thread.Locals is null ? null : AlignLocals(merged, thread.Locals) };
        }).ToList();
    }

    /// <summary>One held thread's registers and stack, and where its eval-loop runs start.</summary>
    private sealed record NativeCopy(ThreadRegisters Registers, byte[] Stack, List<bool> StartsRun);

    /// <summary>The locals of each Python frame at its place in the merged stack; native frames have none.</summary>
    private static List<IReadOnlyList<LocalVariable>> AlignLocals(List<StackFrame> merged, IReadOnlyList<IReadOnlyList<LocalVariable>> locals)
    {
        var aligned = new List<IReadOnlyList<LocalVariable>>(merged.Count);
        var next = 0;
        foreach (var frame in merged)
            aligned.Add(frame.Kind == FrameKind.Native || next >= locals.Count ? [] : locals[next++]);
        return aligned;
    }

    /// <summary>
    /// What names and places the threads, read before a process is held: its thread ids as this machine knows them (a
    /// process in a pid namespace of its own, a container, has ids /proc here and ps, top and pyprobe's other commands do
    /// not know), its tasks, and the names Python gave its threads.
    /// </summary>
    private sealed record ThreadContext(Dictionary<int, int>? HostIds, HashSet<int> Tasks, IReadOnlyDictionary<int, string> PythonNames)
    {
        public static ThreadContext Read(CPythonProcess process)
        {
            var hostIds = PidNamespace.Of(process.Pid) is null ? null : PidNamespace.HostThreadIds(process.Pid);
            var tasks = hostIds?.Keys.ToHashSet()
                ?? Directory.GetDirectories($"/proc/{process.Pid}/task").Select(d => int.TryParse(Path.GetFileName(d), out var t) ? t : 0).ToHashSet();
            return new ThreadContext(hostIds, tasks, new PythonThreadNames(process).Read());
        }
    }

    private List<ThreadStack> ReadThreads(bool locals, ThreadContext context, PausedProcess? paused, Dictionary<int, NativeCopy>? copies)
    {
        var localsReader = locals ? new FrameLocals(process) : null;
        var (hostIds, tasks, pythonNames) = context;
        ulong? gilHolder = L.Runtime.GilHolder is int h ? M.ReadU64(process.RuntimeAddress + (ulong)h) : null;
        var result = new List<ThreadStack>();
        foreach (var interp in process.Interpreters())
            foreach (var tstate in process.ThreadStates(interp))
            {
                ulong threadPointer = M.ReadU64(tstate + (ulong)L.ThreadState.ThreadId);
                int ownTid = L.ThreadState.NativeThreadId is int n ? (int)M.ReadU64(tstate + (ulong)n) : TidFromPthread(threadPointer, tasks);
                int tid = hostIds is null ? ownTid : hostIds.GetValueOrDefault(ownTid);
                var frameLocals = localsReader is null ? null : new List<IReadOnlyList<LocalVariable>>();
                var held = paused is not null && paused.Threads.Contains(tid);
                var startsRun = held ? new List<bool>() : null;
                var frames = ReadFrames(tstate, (frame, code) => frameLocals?.Add(localsReader!.Read(frame, code)), startsRun);
                if (held)
                {
                    var registers = paused!.Registers(tid);
                    copies![tid] = new NativeCopy(registers, paused.ReadStack(tid, registers.Sp), startsRun!);
                }
                // Held, every thread shows the kernel's 't': what it was doing is the state from before.
                var state = tid == 0 ? null : held ? paused!.StateBefore(tid) : TaskState.Of(process.Pid, tid);
                var running = state is char c ? c == 'R' : (bool?)null;
                result.Add(new ThreadStack(tid, pythonNames.GetValueOrDefault(ownTid) ?? ThreadName(tid), HoldsGil(tstate, threadPointer, gilHolder), frames, frameLocals, running));
            }
        return result;
    }

    private int TidFromPthread(ulong threadPointer, HashSet<int> tasks)
    {
        try
        {
            int tid = M.ReadI32(threadPointer + GlibcPthreadTid);
            return tasks.Contains(tid) ? tid : 0;
        }
        catch (ProcessMemoryException) { return 0; }
    }

    private string ThreadName(int tid) => tid == 0 ? "" : TaskState.Name(process.Pid, tid) ?? "";

    private bool? HoldsGil(ulong tstate, ulong threadPointer, ulong? gilHolder)
    {
        if (gilHolder is ulong holder) return holder == tstate;
        if (!process.Binary.Facts.HasThreadLocalThreadState) return null;
        try
        {
            // The thread-local current thread state is set while the thread is attached (holds the GIL).
            return process.ThreadStateTlsOffset(threadPointer) is long offset ? M.ReadU64((ulong)((long)threadPointer + offset)) == tstate : null;
        }
        catch (ProcessMemoryException) { return null; }
    }

    /// <summary>
    /// The thread's frames, innermost first; <paramref name="visit"/> sees each one kept (frame and code object addresses).
    /// <paramref name="startsRun"/> receives, per frame kept, whether it is the first (outermost) of a run of the eval loop:
    /// every frame before 3.11, where a Python call is a C call; 3.11's is_entry; on 3.12+ a frame whose caller is the
    /// shim frame the loop pushes when C code enters it.
    /// </summary>
    public IReadOnlyList<StackFrame> ReadFrames(ulong tstate, Action<ulong, ulong>? visit = null, List<bool>? startsRun = null)
    {
        var frames = new List<StackFrame>();
        var f = L.Frame;
        ulong frame = M.ReadU64(tstate + (ulong)L.ThreadState.TopFrame);
        if (L.ThreadState.CFrameCurrentFrame is int cf && frame != 0)
            frame = M.ReadU64(frame + (ulong)cf);
        ulong? none = process.Binary.Symbols.NoneStruct is ulong ns ? process.Address(ns) : null;
        ulong? codeType = process.Binary.Symbols.CodeType is ulong ct ? process.Address(ct) : null;
        for (int i = 0; frame != 0 && i < MaxFrames; i++)
        {
            bool real = !(f.Owner is int owner && f.FirstNonFrameOwner is int first && M.ReadU8(frame + (ulong)owner) >= first);
            if (!real && startsRun is { Count: > 0 }) startsRun[^1] = true;
            ulong code = M.ReadU64(frame + (ulong)f.Code) & ~f.CodeTagMask;
            if (real && code != 0 && code != none && (codeType is null || M.ReadU64(code + PyObjectLayout.ObType) == codeType))
            {
                frames.Add(ReadFrame(frame, code));
                visit?.Invoke(frame, code);
                startsRun?.Add(f.IsEntry is int entry ? M.ReadU8(frame + (ulong)entry) != 0 : f.FirstNonFrameOwner is null);
            }
            frame = M.ReadU64(frame + (ulong)f.Previous);
        }
        return frames;
    }

    private StackFrame ReadFrame(ulong frame, ulong code)
    {
        var codeObject = _codes.TryRead(code);
        if (codeObject is null) return StackFrame.Unknown;
        var position = L.Frame.PositionKind switch
        {
            InstructionPosition.LastiBytes or InstructionPosition.LastiCodeUnits => M.ReadU32(frame + (ulong)L.Frame.Position),
            _ => (uint)((long)M.ReadU64(frame + (ulong)L.Frame.Position) - (long)(code + (ulong)L.Code.CodeAdaptive!.Value)),
        };
        return StackFrame.Python(codeObject.Name, codeObject.File, codeObject.LineAt(L.Frame.PositionKind, position), codeObject.FirstLine);
    }
}
