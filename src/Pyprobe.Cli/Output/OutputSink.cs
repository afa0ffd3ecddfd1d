using System.Text;

namespace Pyprobe.Cli.Output;

/// <summary>
/// Where a command writes its results: standard output, or the -o FILE (created/truncated, UTF-8
/// without BOM, "\n" line ends). Dispose flushes; the file is only closed, stdout is left open.
/// </summary>
internal sealed class OutputSink : IDisposable
{
    private readonly bool _ownsWriter;

    private OutputSink(TextWriter writer, bool ownsWriter, string? path)
    {
        Writer = writer;
        _ownsWriter = ownsWriter;
        Path = path;
    }

    public TextWriter Writer { get; }
    /// <summary>The -o file, or null for standard output.</summary>
    public string? Path { get; }

    public static OutputSink Open(string? path, TextWriter standardOutput)
    {
        if (string.IsNullOrEmpty(path) || path == "-")
            return new OutputSink(standardOutput, false, null);
        try
        {
            var writer = new StreamWriter(path, append: false, new UTF8Encoding(false)) { NewLine = "\n" };
            return new OutputSink(writer, true, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new CliException($"cannot write {path}: {e.Message}");
        }
    }

    public void Dispose()
    {
        Writer.Flush();
        if (_ownsWriter) Writer.Dispose();
    }
}
