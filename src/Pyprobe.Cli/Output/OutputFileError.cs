namespace Pyprobe.Cli.Output;

/// <summary>The one-line error for an -o file that cannot be written, naming the user's path rather than a temporary one.</summary>
internal static class OutputFileError
{
    public static CliException For(string shown, string path, Exception e) => new(e switch
    {
        DirectoryNotFoundException => $"cannot write {shown}: there is no folder {Path.GetDirectoryName(Path.GetFullPath(path))}",
        _ => $"cannot write {shown}: {e.Message}",
    });
}
