namespace Pyprobe.Cli.Output.Raw;

/// <summary>--format raw: trace writes the ring's records to a file as the kernel framed them (<see cref="RawCaptureWriter"/>); pyprobe convert formats them later.</summary>
internal static class RawFormat
{
    public static readonly OutputFormat Format = new()
    {
        Name = "raw",
        Summary = "a binary capture for pyprobe convert; needs -o FILE",
        Capture = true,
    };
}
