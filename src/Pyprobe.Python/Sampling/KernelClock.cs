using System.Diagnostics;

namespace Pyprobe.Python.Sampling;

/// <summary>The clock of the kernel's records (<c>bpf_ktime_get_ns</c>, CLOCK_MONOTONIC) read from user space.</summary>
public static class KernelClock
{
    /// <summary>Now, in the records' nanoseconds: .NET's Stopwatch reads CLOCK_MONOTONIC on Linux.</summary>
    public static ulong NowNs => (ulong)((Int128)Stopwatch.GetTimestamp() * 1_000_000_000 / Stopwatch.Frequency);
}
