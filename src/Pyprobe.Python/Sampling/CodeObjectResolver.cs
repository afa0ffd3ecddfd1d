using Pyprobe.Python.Profiling;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// Names the frames the kernel sampled: reads each code object once from the process (its qualified name,
/// file, first line and line table) and turns positions into lines. Code objects are cached by address; the
/// first line the kernel read with the frame is compared with the cached one, so an address reused by another
/// function is read again. A code object that is gone before it could be read gives an unknown frame (and is tried
/// again at its next sample). The kernel's copies of a code object it met for the first time
/// (<see cref="CodeCaptureRecord"/>) come before the sample that holds it and are read instead of the process.
/// </summary>
public sealed class CodeObjectResolver : IFrameResolver, IDisposable
{
    private readonly Dictionary<int, ProcessCodeObjects> _processes = [];

    /// <summary>Frames that could not be named (freed code objects, processes that exited).</summary>
    public long UnknownFrames { get; private set; }

    public void Add(CPythonProcess process) => _processes[process.Pid] = new ProcessCodeObjects(process);

    public void Remove(int pid)
    {
        if (_processes.Remove(pid, out var codes)) codes.Dispose();
    }

    public void Learn(int pid, ReadOnlySpan<byte> capture)
    {
        if (_processes.TryGetValue(pid, out var codes) && CodeCaptureRecord.Memory(capture) is { } copies)
            codes.Learn(CodeCaptureRecord.Code(capture), copies);
    }

    public StackFrame Resolve(int pid, SampledFrame frame)
    {
        if (_processes.TryGetValue(pid, out var codes) && codes.TryResolve(frame, out var resolved)) return resolved;
        UnknownFrames++;
        return StackFrame.Unknown;
    }

    public void Dispose()
    {
        foreach (var codes in _processes.Values) codes.Dispose();
        _processes.Clear();
    }

    private sealed class ProcessCodeObjects(CPythonProcess process) : IDisposable
    {
        private readonly Dictionary<ulong, CodeObject> _codes = [];
        private readonly Dictionary<(ulong Code, uint Position), int> _lines = [];
        private readonly CodeObjectReader _reader = new(process);

        public bool TryResolve(SampledFrame frame, out StackFrame resolved)
        {
            if (!_codes.TryGetValue(frame.Code, out var code) || code.FirstLine != (int)frame.FirstLineNo)
            {
                // New, or the address now holds another code object: what was cached for it is stale.
                Forget(frame.Code);
                // A failed read is not remembered: the next sample of that address tries again (a read can fail for a
                // moment, and one failure kept would leave every later sample of a live function unknown).
                code = _reader.TryRead(frame.Code);
                if (code is null)
                {
                    resolved = default;
                    return false;
                }
                _codes[frame.Code] = code;
            }
            if (!_lines.TryGetValue((frame.Code, frame.Position), out var line))
            {
                line = code.LineAt(process.Layout.Frame.PositionKind, frame.Position);
                _lines[(frame.Code, frame.Position)] = line;
            }
            resolved = StackFrame.Python(code.Name, code.File, line, code.FirstLine);
            return true;
        }

        /// <summary>Reads the code object at <paramref name="address"/> from the kernel's copies; kept unless they do not hold it whole.</summary>
        public void Learn(ulong address, CapturedMemory copies)
        {
            if (_reader.TryRead(address, copies) is not { } code) return;
            Forget(address);
            _codes[address] = code;
        }

        /// <summary>Drops what was cached for the code object at <paramref name="address"/>: it and the lines found in it.</summary>
        private void Forget(ulong address)
        {
            if (!_codes.Remove(address)) return;
            foreach (var key in _lines.Keys.Where(k => k.Code == address).ToList()) _lines.Remove(key);
        }

        public void Dispose() => process.Dispose();
    }
}
