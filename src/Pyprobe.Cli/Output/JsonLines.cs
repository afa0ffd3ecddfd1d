using System.Text.Json;

namespace Pyprobe.Cli.Output;

/// <summary>
/// One reusable <see cref="Utf8JsonWriter"/> that writes one object per line straight into an
/// <see cref="EventBuffer"/>: no allocation per line, for writers on the per-event path.
/// </summary>
internal sealed class JsonLines(JsonWriterOptions options)
{
    private Utf8JsonWriter? _writer;
    private EventBuffer? _target;

    /// <summary>Starts a line's object; the caller writes its members and calls <see cref="End"/>.</summary>
    public Utf8JsonWriter Begin(EventBuffer output)
    {
        if (!ReferenceEquals(_target, output))
        {
            _writer = new Utf8JsonWriter(output, options);
            _target = output;
        }
        var json = _writer!;
        json.Reset(output);
        json.WriteStartObject();
        return json;
    }

    /// <summary>Closes the object and ends the line.</summary>
    public void End(EventBuffer output)
    {
        _writer!.WriteEndObject();
        _writer.Flush();
        output.Write((byte)'\n');
    }
}
