namespace Pyprobe.Cli.Output.Raw;

/// <summary>
/// Writes a raw capture: the header, then what the ring hands out, framed records and all, copied from the ring's
/// memory into the output buffer, which a second thread writes behind (see <see cref="EventBuffer"/>): the copy is
/// cheap, the kernel's write is what costs. Nothing is decoded or formatted while tracing; <c>pyprobe convert</c>
/// does that later (see <see cref="RawCaptureHeader"/> for the format).
/// </summary>
internal sealed class RawCaptureWriter : IDisposable
{
    private readonly EventBuffer _file;

    private RawCaptureWriter(EventBuffer file) => _file = file;

    /// <summary>Creates (or truncates) <paramref name="path"/>; a raw capture is binary, so it goes to a file, never to a terminal.</summary>
    public static RawCaptureWriter Create(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "-") throw new CliException("--format raw writes a binary capture: give it a file with -o FILE");
        return new RawCaptureWriter(EventBuffer.Open(path, TextWriter.Null));
    }

    /// <summary>The kernel id of the thread that writes the file (see <see cref="EventBuffer.WriterThreadId"/>).</summary>
    public int? WriterThreadId => _file.WriterThreadId;

    public void WriteHeader(RawCaptureHeader header) => Write(header.Encode());

    /// <summary>Framed records as the ring handed them out.</summary>
    public void Write(ReadOnlySpan<byte> framed)
    {
        // In slices, so the buffer stays at its size while a full ring (up to a GB) passes through.
        const int Slice = 256 * 1024;
        while (!framed.IsEmpty)
        {
            var part = framed[..Math.Min(Slice, framed.Length)];
            _file.Write(part);
            _file.FlushIfFull();
            framed = framed[part.Length..];
        }
    }

    /// <summary>Hands what waits to the writer (when the ring was found empty, as text output does).</summary>
    public void Flush() => _file.Flush();

    public void Dispose() => _file.Dispose();
}
