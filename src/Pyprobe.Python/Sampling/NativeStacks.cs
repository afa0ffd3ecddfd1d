using Pyprobe.Python.Profiling;
using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// <c>record --native</c>: keeps each thread's native stack copy (<see cref="NativeStackRecord"/>) until its sample comes,
/// then unwinds and names it (<see cref="NativeCode"/>) and merges it with the sample's Python frames (<see cref="MixedStack"/>);
/// with <c>--kernel</c> the kernel's frames the record carries go innermost, named from /proc/kallsyms.
/// </summary>
public sealed class NativeStacks : IDisposable
{
    /// <summary>Native frames unwound per sample at most: a C recursion deeper than this keeps its innermost frames.</summary>
    public const int MaxFrames = 256;

    /// <summary>Threads whose copy buffers are kept before the merged ones are let go.</summary>
    private const int MaxPendingThreads = 1024;

    private readonly Dictionary<int, NativeCode> _processes = [];
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

    public void Add(CPythonProcess process) => _processes[process.Pid] = new NativeCode(process);

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
        var stop = code.Unwind(copy.Ip, copy.Sp, copy.Bp, copy.Stack, _counters, _native);
        var before = innermostFirst.Count;
        var paired = MixedStack.Merge(python, startsRun, _native, innermostFirst, reachedEnd: stop == NativeUnwindStop.Complete);
        // A sample with no Python frame whose C frames merge to nothing (caught in the eval loop between two Python
        // calls) is not in the profile, so it is not counted as one with its C frames either.
        if (innermostFirst.Count == before) return;
        if (copy.KernelFrames.Count > 0) innermostFirst.InsertRange(before, KernelFrames(copy.KernelFrames));
        Unwound++;
        _ends[stop] = _ends.GetValueOrDefault(stop) + 1;
        if (!paired) Unpaired++;
    }

    /// <summary>Samples that had kernel frames (<c>--kernel</c>: the thread was in a system call or the kernel's own work).</summary>
    public long WithKernelFrames { get; private set; }

    private readonly Dictionary<ulong, StackFrame> _kernelNames = [];

    // Reused from sample to sample: the caller copies the frames into the sample's stack.
    private readonly List<StackFrame> _kernelFrameBuffer = [];

    private List<StackFrame> KernelFrames(List<ulong> addresses)
    {
        WithKernelFrames++;
        var frames = _kernelFrameBuffer;
        frames.Clear();
        for (var i = 0; i < addresses.Count; i++)
        {
            // Every frame but the innermost is a return address: its call is the byte before.
            var address = i == 0 ? addresses[i] : addresses[i] - 1;
            if (!_kernelNames.TryGetValue(address, out var frame))
            {
                frame = KernelSymbols.Current.Find(address) is var (name, module)
                    ? StackFrame.Kernel(name, module)
                    : StackFrame.Kernel(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"0x{addresses[i]:x}"), "kernel");
                if (_kernelNames.Count > 1 << 16) _kernelNames.Clear();
                _kernelNames[address] = frame;
            }
            // At a switch-out the innermost frames are pyprobe's own program and the tracepoint's call of it: not the
            // thread's.
            if (frames.Count == 0 && IsTracingMachinery(frame)) continue;
            frames.Add(frame);
        }
        return frames;
    }

    private static bool IsTracingMachinery(StackFrame frame) =>
        frame.File == "[bpf]" || frame.Function.StartsWith("bpf_trace_run", StringComparison.Ordinal)
        || frame.Function.StartsWith("__bpf_trace_", StringComparison.Ordinal) || frame.Function.StartsWith("__traceiter_", StringComparison.Ordinal);

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
        public List<ulong> KernelFrames { get; } = [];

        public void Take(NativeStackRecord record)
        {
            var stack = record.Stack;
            if (_stack.Length < stack.Length) _stack = new byte[stack.Length];
            stack.CopyTo(_stack);
            _length = stack.Length;
            (TimeNs, Pid, Ip, Sp, Bp) = (record.TimeNs, record.Pid, record.Ip, record.Sp, record.Bp);
            KernelFrames.Clear();
            for (var i = 0; i < record.KernelFrameCount; i++) KernelFrames.Add(record.KernelFrame(i));
        }
    }
}
