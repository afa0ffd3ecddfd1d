using System.Globalization;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>Picks the writer for a format and names the file when the user gave none.</summary>
internal static class ProfileWriters
{
    public static IProfileWriter For(ProfileFormat format) => format switch
    {
        ProfileFormat.Flamegraph => new FlameGraphWriter(),
        ProfileFormat.Speedscope => new SpeedscopeWriter(),
        ProfileFormat.Pprof => new PprofWriter(),
        ProfileFormat.Collapsed => new CollapsedWriter(),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary><c>pyprobe-PID-YYYYMMDD-HHMMSS.EXT</c>, local time of the start of the recording.</summary>
    public static string DefaultFileName(int pid, DateTime start, ProfileFormat format) =>
        string.Create(CultureInfo.InvariantCulture, $"pyprobe-{pid}-{start:yyyyMMdd-HHmmss}.{For(format).Extension}");
}
