using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Sampling;

/// <summary>Turns one sampled frame (code object address, position, first line) of a process into a named frame.</summary>
public interface IFrameResolver
{
    StackFrame Resolve(int pid, SampledFrame frame);
}

/// <summary>
/// Adds the kernel's samples up into a profile: frames resolved to names and lines, innermost-first records
/// turned root-first, a thread root per thread with <c>--threads</c>, a truncation marker where the kernel
/// stopped walking. Samples of a thread with no Python frame are counted, not added.
/// </summary>
public sealed class ProfileRecorder(IFrameResolver resolver, bool threadRoots)
{
    private readonly StackAggregator _stacks = new();
    private readonly Dictionary<int, string?> _threadNames = [];
    private StackFrame[] _frames = new StackFrame[128];
    private long _taken, _noPythonFrame, _truncated;

    /// <summary>Samples delivered so far.</summary>
    public long Delivered => _taken;

    /// <summary>Adds one <see cref="StackSampleRecord"/> as the ring delivered it.</summary>
    public void Add(ReadOnlySpan<byte> record)
    {
        var sample = new StackSampleRecord(record);
        _taken++;
        var count = sample.FrameCount;
        if (count == 0)
        {
            _noPythonFrame++;
            return;
        }
        var truncated = (sample.Flags & StackSampleFlags.Truncated) != 0;
        if (truncated) _truncated++;
        var length = count + (truncated ? 1 : 0) + (threadRoots ? 1 : 0);
        if (_frames.Length < length) _frames = new StackFrame[Math.Max(length, _frames.Length * 2)];
        var at = 0;
        if (threadRoots) _frames[at++] = StackFrame.ThreadRoot(sample.Tid, ThreadName(sample.Pid, sample.Tid));
        if (truncated) _frames[at++] = StackFrame.Truncated;
        for (var i = count - 1; i >= 0; i--) _frames[at++] = resolver.Resolve(sample.Pid, sample.Frame(i));
        _stacks.Add(_frames.AsSpan(0, at));
    }

    /// <summary>The profile so far; <paramref name="lost"/> is the kernel's count of samples the ring could not take.</summary>
    public StackProfile Build(IReadOnlyList<int> pids, string version, int rateHz, ProfileMode mode, DateTimeOffset start, TimeSpan duration, long lost) =>
        _stacks.Build(new ProfileMetadata(pids, version, rateHz, mode, start, duration,
            new SampleTotals(_taken + lost, _noPythonFrame, _truncated, lost)));

    private string? ThreadName(int pid, int tid)
    {
        if (_threadNames.TryGetValue(tid, out var name)) return name;
        try { name = File.ReadAllText($"/proc/{pid}/task/{tid}/comm").TrimEnd('\n'); }
        catch (IOException) { name = null; }
        catch (UnauthorizedAccessException) { name = null; }
        _threadNames[tid] = name;
        return name;
    }
}
