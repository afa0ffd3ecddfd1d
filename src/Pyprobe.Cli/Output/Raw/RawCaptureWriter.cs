namespace Pyprobe.Cli.Output.Raw;

/// <summary>
/// Writes a raw capture: the header, then what the ring hands out, framed records and all, each drain pass in one
/// write(2) straight from the ring's memory. Nothing is decoded or formatted while tracing; <c>pyprobe convert</c>
/// does that later (see <see cref="RawCaptureHeader"/> for the format).
/// </summary>
internal sealed class RawCaptureWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly string _path;

    private RawCaptureWriter(FileStream file, string path)
    {
        _file = file;
        _path = path;
    }

    /// <summary>Creates (or truncates) <paramref name="path"/>; a raw capture is binary, so it goes to a file, never to a terminal.</summary>
    public static RawCaptureWriter Create(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "-") throw new CliException("--format raw writes a binary capture: give it a file with -o FILE");
        try
        {
            // No FileStream buffer: the ring's bytes go to the kernel in one write per drain pass, without a copy.
            return new RawCaptureWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0), path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new CliException($"cannot write {path}: {e.Message}");
        }
    }

    public void WriteHeader(RawCaptureHeader header) => Write(header.Encode());

    /// <summary>Framed records as the ring handed them out.</summary>
    public void Write(ReadOnlySpan<byte> framed)
    {
        try
        {
            _file.Write(framed);
        }
        catch (IOException e)
        {
            throw new CliException($"cannot write {_path}: {e.Message}");
        }
    }

    public void Dispose() => _file.Dispose();
}
