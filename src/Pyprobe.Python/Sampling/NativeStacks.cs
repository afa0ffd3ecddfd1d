using System.Globalization;
using Pyprobe.Python.Profiling;
using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// <c>record --native</c>: keeps each thread's native stack copy (<see cref="NativeStackRecord"/>) until its sample comes,
/// then unwinds it with the <c>.eh_frame</c> tables of the files the process has mapped and names the frames: a function's
/// symbol, or <c>FILE+0xOFFSET</c> of the function's start where the file names none (a stripped library's static code).
/// Each frame is told apart as the interpreter's eval loop, the interpreter's other code, or another file's
/// (<see cref="NativeFrameRole"/>), which is how <see cref="MixedStack"/> merges it with the Python frames.
/// </summary>
public sealed class NativeStacks : IDisposable
{
    /// <summary>Native frames unwound per sample at most: a C recursion deeper than this keeps its innermost frames.</summary>
    public const int MaxFrames = 256;

    /// <summary>Threads whose copy buffers are kept before the merged ones are let go.</summary>
    private const int MaxPendingThreads = 1024;

    private readonly Dictionary<int, ProcessCode> _processes = [];
    private readonly Dictionary<int, PendingCopy> _pending = [];
    private readonly Dictionary<NativeUnwindStop, long> _ends = [];
    private readonly List<NativeFrame> _native = [];
    private readonly ulong[] _counters = new ulong[MaxFrames];

    /// <summary>Samples whose native stack was merged in.</summary>
    public long Unwound { get; private set; }

    /// <summary>Samples whose native and Python stacks did not pair up (taken while a call crossed between C and Python): only their innermost C frames were kept.</summary>
    public long Unpaired { get; private set; }

    /// <summary>How the unwinding of the merged samples ended (a copy too short, code without unwind tables, ...).</summary>
    public IReadOnlyDictionary<NativeUnwindStop, long> Ends => _ends;

    public void Add(CPythonProcess process) => _processes[process.Pid] = new ProcessCode(process);

    public void Remove(int pid)
    {
        _processes.Remove(pid);
        foreach (var tid in _pending.Where(p => p.Value.Pid == pid).Select(p => p.Key).ToList()) _pending.Remove(tid);
    }

    /// <summary>
    /// Whether each Python frame of <paramref name="pid"/> is a run of the eval loop of its own (3.8–3.10: a Python call is a
    /// C call); from 3.11 the walk marks the frames that start one.
    /// </summary>
    public bool EachFrameIsARun(int pid) => _processes.TryGetValue(pid, out var code) && code.EachFrameIsARun;

    /// <summary>Keeps a <see cref="StackSampleFlags.NativeStack"/> record for the sample that follows it.</summary>
    public void Keep(ReadOnlySpan<byte> bytes)
    {
        var record = new NativeStackRecord(bytes);
        if (!_pending.TryGetValue(record.Tid, out var copy))
        {
            // A buffer per thread, reused: threads come and go in a long run, so the ones already merged are let go.
            if (_pending.Count >= MaxPendingThreads)
                foreach (var tid in _pending.Where(p => p.Value.TimeNs == 0).Select(p => p.Key).ToList()) _pending.Remove(tid);
            copy = new PendingCopy();
            _pending[record.Tid] = copy;
        }
        copy.Take(record);
    }

    /// <summary>Whether the copy of the sample <paramref name="tid"/> took at <paramref name="timeNs"/> came (the ring may have had no room for it).</summary>
    public bool HasCopy(int pid, int tid, ulong timeNs) =>
        _pending.TryGetValue(tid, out var copy) && copy.TimeNs == timeNs && copy.Pid == pid && _processes.ContainsKey(pid);

    /// <summary>
    /// The sample's stack with its native frames (<see cref="HasCopy"/> first): the copy unwound, named and merged with the
    /// sample's Python frames (<see cref="MixedStack"/>), innermost first into <paramref name="innermostFirst"/>.
    /// </summary>
    public void Merge(int pid, int tid, IReadOnlyList<StackFrame> python, IReadOnlyList<bool> startsRun, List<StackFrame> innermostFirst)
    {
        var copy = _pending[tid];
        copy.TimeNs = 0;
        var code = _processes[pid];
        var stop = NativeUnwinder.Unwind(copy.Ip, copy.Sp, copy.Bp, copy.Stack, code.Modules, _counters, out var count);
        _native.Clear();
        // Past the first frame each address is a return address: the call is the byte before it (a call can be a
        // function's last instruction, its return address then the next function's first).
        for (var i = 0; i < count; i++) _native.Add(code.Name(i == 0 ? _counters[i] : _counters[i] - 1));
        Unwound++;
        _ends[stop] = _ends.GetValueOrDefault(stop) + 1;
        if (!MixedStack.Merge(python, startsRun, _native, innermostFirst, reachedEnd: stop == NativeUnwindStop.Complete)) Unpaired++;
    }

    public void Dispose() => _processes.Clear();

    /// <summary>One thread's latest copy; its buffer is reused from sample to sample.</summary>
    private sealed class PendingCopy
    {
        private byte[] _stack = [];
        private int _length;

        public ulong TimeNs { get; set; }
        public int Pid { get; private set; }
        public ulong Ip { get; private set; }
        public ulong Sp { get; private set; }
        public ulong Bp { get; private set; }
        public ReadOnlySpan<byte> Stack => _stack.AsSpan(0, _length);

        public void Take(NativeStackRecord record)
        {
            var stack = record.Stack;
            if (_stack.Length < stack.Length) _stack = new byte[stack.Length];
            stack.CopyTo(_stack);
            _length = stack.Length;
            (TimeNs, Pid, Ip, Sp, Bp) = (record.TimeNs, record.Pid, record.Ip, record.Sp, record.Bp);
        }
    }

    /// <summary>A process's mapped files, its interpreter's place among them, and the names given so far.</summary>
    private sealed class ProcessCode(CPythonProcess process)
    {
        private readonly (ulong Start, ulong End)[] _interpreter = InterpreterRanges(process);
        private readonly (ulong Start, ulong End)[] _evalLoop =
            EvalLoopCode.Ranges(process.Binary.Elf).Select(r => (process.Address(r.Start), process.Address(r.End))).ToArray();
        private readonly Dictionary<ulong, NativeFrame> _names = [];

        public NativeModules Modules { get; } = NativeModules.ForProcess(process.Pid);

        public bool EachFrameIsARun { get; } = process.Layout.Frame is { IsEntry: null, FirstNonFrameOwner: null };

        /// <summary>Names the frame whose code is at <paramref name="pc"/>.</summary>
        public NativeFrame Name(ulong pc)
        {
            if (_names.TryGetValue(pc, out var known)) return known;
            var role = _evalLoop.Any(r => pc >= r.Start && pc < r.End) ? NativeFrameRole.EvalLoop
                : _interpreter.Any(r => pc >= r.Start && pc < r.End) ? NativeFrameRole.Interpreter
                : NativeFrameRole.Other;
            var frame = new NativeFrame(Symbolize(pc), role);
            if (_names.Count > 1 << 16) _names.Clear();
            _names[pc] = frame;
            return frame;
        }

        private StackFrame Symbolize(ulong pc)
        {
            if (!Modules.TryLocate(pc, out var module, out var vaddr)) return StackFrame.Native(string.Create(CultureInfo.InvariantCulture, $"0x{pc:x}"), "?");
            var file = Path.GetFileName(module.Path);
            if (NativeSymbolizer.FunctionName(module.Elf, vaddr) is { } name) return StackFrame.Native(name, file);
            var start = module.Frames?.TryFindFunction(vaddr)?.Start ?? vaddr;
            return StackFrame.Native(string.Create(CultureInfo.InvariantCulture, $"{file}+0x{start:x}"), file);
        }

        /// <summary>The interpreter's executable segments in the process (the executable's, or libpython's).</summary>
        private static (ulong, ulong)[] InterpreterRanges(CPythonProcess process) =>
            process.Binary.Elf.LoadSegments.Where(s => s.Executable)
                .Select(s => (process.Address(s.VirtualAddress), process.Address(s.VirtualAddress + s.MemorySize))).ToArray();
    }
}
