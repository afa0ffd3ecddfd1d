namespace Pyprobe.Cli.Output.Profiles;

/// <summary>Picks the writer for a format (from its descriptor) and names the file when the user gave none.</summary>
internal static class ProfileWriters
{
    public static IProfileWriter For(OutputFormat format) =>
        (format.Profile ?? throw new ArgumentException($"format {format} writes no profile", nameof(format)))();

    /// <summary><c>pyprobe-PID-YYYYMMDD-HHMMSS.EXT</c>, local time of the start of the recording.</summary>
    public static string DefaultFileName(int pid, DateTime start, OutputFormat format) =>
        string.Create(CultureInfo.InvariantCulture, $"pyprobe-{pid}-{start:yyyyMMdd-HHmmss}.{For(format).Extension}");
}
