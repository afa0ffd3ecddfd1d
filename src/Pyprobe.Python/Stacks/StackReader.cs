using System.Buffers.Binary;
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
/// <param name="KnownToPython">False for a thread the interpreter has no thread state for (a C library's own worker), which
/// <c>dump --native</c> shows by its C frames alone.</param>
public sealed record ThreadStack(int Tid, string Name, bool? HoldsGil, IReadOnlyList<StackFrame> Frames, IReadOnlyList<IReadOnlyList<LocalVariable>>? Locals = null,
    bool? Running = null, bool KnownToPython = true);

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
    // The frame fields the walk reads, in one read per frame.
    private readonly int _frameReadSize = FrameReadSize(process.Layout.Frame);
    private RuntimeLayout L => process.Layout;
    private ProcessMemory M => process.Memory;

    /// <summary>Native frames unwound per thread at most by <c>dump --native</c>.</summary>
    public const int MaxNativeFrames = 1024;

    /// <summary>How long the last <see cref="ReadAll"/> with native stacks held the process still.</summary>
    public TimeSpan? Paused { get; private set; }

    /// <summary>
    /// The threads the last <see cref="ReadAll"/> read, by their pthread_self() (thread_id, which is what
    /// <c>threading.get_ident()</c> gives): their tids as this machine knows them.
    /// </summary>
    public IReadOnlyDictionary<ulong, int> TidsByIdent => _tidsByIdent;
    private readonly Dictionary<ulong, int> _tidsByIdent = [];

    /// <summary>
    /// Every thread of every interpreter; with <paramref name="locals"/> each frame's local variables too; with
    /// <paramref name="native"/> each thread's C frames merged in (<see cref="MixedStack"/>), which holds the process still
    /// (<see cref="PausedProcess"/>) while its Python stacks, registers and native stacks are read; with
    /// <paramref name="kernel"/> (and native) each thread's kernel frames innermost, read just before the process is held
    /// (held, every thread would be in the kernel's ptrace stop).
    /// </summary>
    public IReadOnlyList<ThreadStack> ReadAll(bool locals = false, bool native = false, bool kernel = false)
    {
        if (!native) return Resolve(ReadThreads(locals, ThreadContext.Read(process), null, null));
        // The maps and the interpreter's symbols are read before the process is held; the unwinding after it is let go.
        var code = new NativeCode(process);
        var context = ThreadContext.Read(process);
        var kernelFrames = kernel
            ? TaskState.Ids(process.Pid).ToDictionary(tid => tid, tid => TaskKernelStack.Read(process.Pid, tid)
                .Select(f => StackFrame.Kernel(f.Function, f.Module)).ToList())
            : null;
        var copies = new Dictionary<int, NativeCopy>();
        List<HeldThread> held;
        var paused = PausedProcess.Pause(process.Pid);
        var cOnly = new List<int>();
        try
        {
            held = ReadThreads(locals, context, paused, copies);
            // The threads the interpreter does not know: their C frames are all there is to show.
            foreach (var tid in paused.Threads.Where(t => !copies.ContainsKey(t)))
            {
                var registers = paused.Registers(tid);
                copies[tid] = new NativeCopy(registers, paused.ReadStack(tid, registers.Sp), []);
                cOnly.Add(tid);
            }
        }
        finally
        {
            paused.Dispose();
            Paused = paused.Duration;
        }
        // Code objects are named once the process goes on: the frames keep them alive (a sleeping or waiting thread's
        // certainly; one that returned meanwhile shows as a freed code object, as in a profile).
        var threads = Resolve(held);
        var counters = new ulong[MaxNativeFrames];
        var frames = new List<NativeFrame>();
        var result = threads.Select(thread =>
        {
            if (!copies.TryGetValue(thread.Tid, out var copy)) return thread;
            var stop = code.Unwind(copy.Registers.Ip, copy.Registers.Sp, copy.Registers.Bp, copy.Stack, counters, frames);
            var merged = new List<StackFrame>();
            MixedStack.Merge(thread.Frames, copy.StartsRun, frames, merged, reachedEnd: stop == NativeUnwindStop.Complete);
            if (kernelFrames?.GetValueOrDefault(thread.Tid) is { } inKernel) merged.InsertRange(0, inKernel);
            return thread with { Frames = merged, Locals = thread.Locals is null ? null : AlignLocals(merged, thread.Locals) };
        }).ToList();
        foreach (var tid in cOnly)
        {
            var copy = copies[tid];
            code.Unwind(copy.Registers.Ip, copy.Registers.Sp, copy.Registers.Bp, copy.Stack, counters, frames);
            var state = paused.StateBefore(tid);
            result.Add(new ThreadStack(tid, ThreadName(tid), null,
                [.. kernelFrames?.GetValueOrDefault(tid) ?? [], .. frames.Select(f => f.Frame)], null,
                state is char c ? c == 'R' : null, KnownToPython: false));
        }
        return result;
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
            var tasks = hostIds?.Keys.ToHashSet() ?? TaskState.Ids(process.Pid).ToHashSet();
            return new ThreadContext(hostIds, tasks, new PythonThreadNames(process).Read());
        }
    }

    /// <summary>A thread as read: its frames as code objects and positions, named by <see cref="Resolve"/>.</summary>
    private sealed record HeldThread(ThreadStack Thread, List<RawFrame> Frames);

    /// <summary>One Python frame as read: its code object's address and the position in it.</summary>
    private readonly record struct RawFrame(ulong Code, uint Position);

    /// <summary>Names every thread's frames, each code object read once.</summary>
    private List<ThreadStack> Resolve(List<HeldThread> threads)
    {
        var codes = new Dictionary<ulong, CodeObject?>();
        return threads.Select(t => t.Thread with { Frames = Resolve(t.Frames, codes) }).ToList();
    }

    private List<StackFrame> Resolve(List<RawFrame> raw, Dictionary<ulong, CodeObject?> codes)
    {
        var frames = new List<StackFrame>(raw.Count);
        foreach (var (code, position) in raw)
        {
            if (!codes.TryGetValue(code, out var codeObject)) codes[code] = codeObject = _codes.TryRead(code);
            frames.Add(codeObject is null ? StackFrame.Unknown
                : StackFrame.Python(codeObject.Name, codeObject.File, codeObject.LineAt(L.Frame.PositionKind, position), codeObject.FirstLine));
        }
        return frames;
    }

    private List<HeldThread> ReadThreads(bool locals, ThreadContext context, PausedProcess? paused, Dictionary<int, NativeCopy>? copies)
    {
        var localsReader = locals ? new FrameLocals(process) : null;
        var (hostIds, tasks, pythonNames) = context;
        ulong? runtimeGilHolder = L.Runtime.GilHolder is int h ? M.ReadU64(process.RuntimeAddress + (ulong)h) : null;
        var result = new List<HeldThread>();
        var isCode = new Dictionary<ulong, bool>();
        foreach (var interp in process.Interpreters())
        {
            var gilHolder = runtimeGilHolder ?? InterpreterGilHolder(interp);
            foreach (var tstate in process.ThreadStates(interp))
            {
                ulong threadPointer = M.ReadU64(tstate + (ulong)L.ThreadState.ThreadId);
                int ownTid = L.ThreadState.NativeThreadId is int n ? (int)M.ReadU64(tstate + (ulong)n) : TidFromPthread(threadPointer, tasks);
                int tid = hostIds is null ? ownTid : hostIds.GetValueOrDefault(ownTid);
                if (tid != 0) _tidsByIdent[threadPointer] = tid;
                var frameLocals = localsReader is null ? null : new List<IReadOnlyList<LocalVariable>>();
                var held = paused is not null && paused.Threads.Contains(tid);
                var startsRun = held ? new List<bool>() : null;
                var frames = ReadRawFrames(tstate, (frame, code) => frameLocals?.Add(localsReader!.Read(frame, code)), startsRun, isCode);
                if (held)
                {
                    var registers = paused!.Registers(tid);
                    copies![tid] = new NativeCopy(registers, paused.ReadStack(tid, registers.Sp), startsRun!);
                }
                // Held, every thread shows the kernel's 't': what it was doing is the state from before.
                var state = tid == 0 ? null : held ? paused!.StateBefore(tid) : TaskState.Of(process.Pid, tid);
                var running = state is char c ? c == 'R' : (bool?)null;
                result.Add(new HeldThread(
                    new ThreadStack(tid, pythonNames.GetValueOrDefault(ownTid) ?? ThreadName(tid), HoldsGil(tstate, threadPointer, gilHolder), [], frameLocals, running), frames));
            }
        }
        return result;
    }

    private readonly Dictionary<ulong, CodeObject?> _frameCodes = [];

    /// <summary>
    /// The one frame at <paramref name="frame"/>, named (a suspended coroutine's or generator's, which no thread's stack
    /// holds); null when it holds no code object.
    /// </summary>
    public StackFrame? ReadFrame(ulong frame, IMemoryReader? memory = null)
    {
        var f = L.Frame;
        Span<byte> fields = stackalloc byte[_frameReadSize];
        (memory ?? M).Read(frame, fields);
        ulong code = U64(fields, f.Code) & ~f.CodeTagMask;
        if (code == 0) return null;
        var frames = Resolve([new RawFrame(code, PositionOf(fields, code))], _frameCodes);
        return frames[0].Kind == FrameKind.Unknown ? null : frames[0];
    }

    private static int FrameReadSize(FrameLayout f)
    {
        var positionBytes = f.PositionKind is InstructionPosition.LastiBytes or InstructionPosition.LastiCodeUnits ? 4 : 8;
        return new[] { f.Code + 8, f.Previous + 8, f.Position + positionBytes, (f.Owner ?? 0) + 1, (f.IsEntry ?? 0) + 1 }.Max();
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

    /// <summary>
    /// 3.12+: the thread state holding the interpreter's GIL (its last holder while it is locked; 0 when free), read once
    /// per interpreter, so that at most one thread is said to hold it: each thread's own thread-local state, read one
    /// after the other while the GIL changes hands, could show two. Null where the layout does not say.
    /// </summary>
    private ulong? InterpreterGilHolder(ulong interp)
    {
        if (L.Interpreter is not { CevalGil: int gilField, GilLastHolder: int lastHolder, GilLocked: int locked }) return null;
        try
        {
            var gil = M.ReadU64(interp + (ulong)gilField);
            if (gil == 0) return null;
            return M.ReadI32(gil + (ulong)locked) != 0 ? M.ReadU64(gil + (ulong)lastHolder) : 0;
        }
        catch (ProcessMemoryException) { return null; }
    }

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
    public IReadOnlyList<StackFrame> ReadFrames(ulong tstate, Action<ulong, ulong>? visit = null, List<bool>? startsRun = null) =>
        Resolve(ReadRawFrames(tstate, visit, startsRun, []), []);

    /// <summary>
    /// <see cref="ReadFrames"/> without naming: one read per frame (its fields are within <see cref="_frameReadSize"/>
    /// bytes), the code object's type checked once per address in <paramref name="isCode"/>.
    /// </summary>
    private List<RawFrame> ReadRawFrames(ulong tstate, Action<ulong, ulong>? visit, List<bool>? startsRun, Dictionary<ulong, bool> isCode)
    {
        var frames = new List<RawFrame>();
        var f = L.Frame;
        ulong frame = M.ReadU64(tstate + (ulong)L.ThreadState.TopFrame);
        if (L.ThreadState.CFrameCurrentFrame is int cf && frame != 0)
            frame = M.ReadU64(frame + (ulong)cf);
        ulong? none = process.Binary.Symbols.NoneStruct is ulong ns ? process.Address(ns) : null;
        ulong? codeType = process.Binary.Symbols.CodeType is ulong ct ? process.Address(ct) : null;
        Span<byte> fields = stackalloc byte[_frameReadSize];
        for (int i = 0; frame != 0 && i < MaxFrames; i++)
        {
            M.Read(frame, fields);
            bool real = !(f.Owner is int owner && f.FirstNonFrameOwner is int first && fields[owner] >= first);
            if (!real && startsRun is { Count: > 0 }) startsRun[^1] = true;
            ulong code = U64(fields, f.Code) & ~f.CodeTagMask;
            if (real && code != 0 && code != none && IsCode(code))
            {
                frames.Add(new RawFrame(code, PositionOf(fields, code)));
                visit?.Invoke(frame, code);
                startsRun?.Add(f.IsEntry is int entry ? fields[entry] != 0 : f.FirstNonFrameOwner is null);
            }
            frame = U64(fields, f.Previous);
        }
        return frames;

        bool IsCode(ulong code)
        {
            if (codeType is null) return true;
            if (!isCode.TryGetValue(code, out var known)) isCode[code] = known = M.ReadU64(code + PyObjectLayout.ObType) == codeType;
            return known;
        }
    }

    /// <summary>The frame's position as <see cref="CodeObject.LineAt"/> takes it: f_lasti, or the instruction pointer's offset in the code.</summary>
    private uint PositionOf(ReadOnlySpan<byte> fields, ulong code) => L.Frame.PositionKind switch
    {
        InstructionPosition.LastiBytes or InstructionPosition.LastiCodeUnits => BinaryPrimitives.ReadUInt32LittleEndian(fields[L.Frame.Position..]),
        _ => (uint)((long)U64(fields, L.Frame.Position) - (long)(code + (ulong)L.Code.CodeAdaptive!.Value)),
    };

    private static ulong U64(ReadOnlySpan<byte> fields, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(fields[offset..]);
}
