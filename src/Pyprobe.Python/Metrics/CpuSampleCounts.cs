using Pyprobe.Python.Profiling;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Metrics;

/// <summary>
/// Samples per process by the function that was running (the innermost Python frame): a flat profile, the one a
/// time series can carry. Only the innermost frame is named, so each sample costs one cached lookup.
/// </summary>
internal sealed class CpuSampleCounts(IFrameResolver resolver)
{
    private readonly Dictionary<int, Dictionary<(string Function, string File), ulong>> _processes = [];

    public void Add(ReadOnlySpan<byte> record)
    {
        var sample = new StackSampleRecord(record);
        if ((sample.Flags & StackSampleFlags.CodeObject) != 0)
        {
            resolver.Learn(sample.Pid, record);
            return;
        }
        if (sample.FrameCount == 0) return;
        var frame = resolver.Resolve(sample.Pid, sample.Frame(0));
        if (!_processes.TryGetValue(sample.Pid, out var counts)) _processes[sample.Pid] = counts = [];
        var key = frame.Kind == FrameKind.Python ? (frame.Function, frame.File) : (frame.Function, "");
        counts[key] = counts.GetValueOrDefault(key) + 1;
    }

    public IReadOnlyDictionary<(string Function, string File), ulong> Of(int pid) =>
        _processes.TryGetValue(pid, out var counts) ? counts : new Dictionary<(string, string), ulong>();

    public void Forget(int pid) => _processes.Remove(pid);
}
