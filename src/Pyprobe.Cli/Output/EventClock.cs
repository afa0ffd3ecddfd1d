using System.Diagnostics;

namespace Pyprobe.Cli.Output;

/// <summary>
/// Converts the kernel's event timestamps (bpf_ktime_get_ns, CLOCK_MONOTONIC) to local wall-clock
/// time. .NET's Stopwatch reads the same clock on Linux, so one offset taken at start suffices.
/// </summary>
internal sealed class EventClock
{
    private readonly long _monotonicToUnixNs;
    private readonly long _localOffsetNs;

    public EventClock()
    {
        var monotonicNs = (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));
        var unixNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        _monotonicToUnixNs = unixNs - monotonicNs;
        _localOffsetNs = (long)TimeZoneInfo.Local.GetUtcOffset(DateTime.UtcNow).TotalMilliseconds * 1_000_000;
    }

    /// <summary>Now on the events' clock (CLOCK_MONOTONIC nanoseconds), e.g. when tracing stopped.</summary>
    public static ulong MonotonicNowNs()
    {
        var ticks = Stopwatch.GetTimestamp();
        return Stopwatch.Frequency == 1_000_000_000 ? (ulong)ticks : (ulong)(ticks * (1e9 / Stopwatch.Frequency));
    }


    /// <summary>A clock with given offsets: the one a raw capture recorded, so its conversion shows the times the live run would have.</summary>
    public EventClock(long monotonicToUnixNs, long localOffsetNs)
    {
        _monotonicToUnixNs = monotonicToUnixNs;
        _localOffsetNs = localOffsetNs;
    }

    /// <summary>Unix time minus CLOCK_MONOTONIC, in nanoseconds, when the clock was made.</summary>
    public long MonotonicToUnixNs => _monotonicToUnixNs;

    /// <summary>The local time zone's offset from UTC, in nanoseconds, when the clock was made.</summary>
    public long LocalOffsetNs => _localOffsetNs;

    /// <summary>Nanoseconds since local midnight for a monotonic timestamp.</summary>
    public long LocalNanosecondOfDay(ulong monotonicNs)
    {
        var local = (long)monotonicNs + _monotonicToUnixNs + _localOffsetNs;
        const long day = 86_400L * 1_000_000_000;
        return ((local % day) + day) % day;
    }
}
