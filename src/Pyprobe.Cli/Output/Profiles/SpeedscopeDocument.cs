using System.Text.Json.Serialization;

namespace Pyprobe.Cli.Output.Profiles;

// speedscope's file format (the schema at speedscope.app/file-format-schema.json): a shared frame table and
// "sampled" profiles whose samples are stacks of frame indexes, root first, each with a weight.

/// <summary>The whole file.</summary>
/// <param name="Schema">Always <see cref="SpeedscopeDocument.SchemaUrl"/>: speedscope recognises its format by it.</param>
/// <param name="Name">Shown as the file's title.</param>
/// <param name="ActiveProfileIndex">The profile shown first.</param>
/// <param name="Exporter">Who wrote the file.</param>
internal sealed record SpeedscopeDocument(
    [property: JsonPropertyName("$schema")] string Schema,
    SpeedscopeShared Shared,
    IReadOnlyList<SpeedscopeProfile> Profiles,
    string Name,
    int ActiveProfileIndex,
    string Exporter)
{
    public const string SchemaUrl = "https://www.speedscope.app/file-format-schema.json";
}

internal sealed record SpeedscopeShared(IReadOnlyList<SpeedscopeFrame> Frames);

/// <param name="File">Null (left out) for frames that are not Python code.</param>
/// <param name="Line">Null (left out) with <paramref name="File"/>.</param>
internal sealed record SpeedscopeFrame(string Name, string? File, int? Line);

/// <param name="Type">Always "sampled".</param>
/// <param name="Unit">"nanoseconds" (weights are samples × period) or "none" (weights are sample counts).</param>
/// <param name="Samples">Stacks as indexes into the shared frames, root first.</param>
/// <param name="Weights">One per sample.</param>
internal sealed record SpeedscopeProfile(
    string Type,
    string Name,
    string Unit,
    long StartValue,
    long EndValue,
    IReadOnlyList<int[]> Samples,
    IReadOnlyList<long> Weights);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(SpeedscopeDocument))]
internal sealed partial class SpeedscopeJsonContext : JsonSerializerContext;
