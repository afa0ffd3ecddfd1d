using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Pyprobe.Cli.Output;

/// <summary>
/// A whole document as JSON with strings escaped only where JSON needs it, as pyprobe's event writers write them: the
/// default encoder writes ' &lt; &gt; + &amp; as \uXXXX, which reprs ("&lt;list of 3&gt;", 'text') and quoted reasons are full of.
/// </summary>
internal static class RelaxedJson
{
    private static readonly JsonWriterOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonWriterOptions Indented = Compact with { Indented = true };

    public static string Serialize<T>(T document, JsonTypeInfo<T> type, bool indented = false)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, indented ? Indented : Compact))
            JsonSerializer.Serialize(writer, document, type);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
