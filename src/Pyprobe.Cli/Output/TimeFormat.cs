namespace Pyprobe.Cli.Output;

/// <summary>How text lines show time: HH:MM:SS (like the seed's bpftrace one-liner), with microseconds, or not at all.</summary>
internal enum TimeFormat
{
    Seconds,
    Micros,
    None,
}
