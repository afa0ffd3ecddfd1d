namespace Pyprobe.Cli.Output.Formats;

/// <summary>
/// Every <c>--format</c> there is. A new format is one file that implements its writers and declares its
/// <see cref="OutputFormat"/> descriptor, plus its entry in <see cref="All"/>. The list is written out rather
/// than discovered: NativeAOT and trimming keep what is referenced, the help lists the formats in this order,
/// and a format cannot appear or vanish by accident.
/// </summary>
internal static class OutputFormats
{
    public static readonly IReadOnlyList<OutputFormat> All =
    [
        TextFormat.Format,
        JsonFormat.Format,
        Timeline.ChromeTraceStream.Format,
        Raw.RawFormat.Format,
        Profiles.FlameGraphWriter.Format,
        Profiles.SpeedscopeWriter.Format,
        Profiles.PprofWriter.Format,
        Profiles.CollapsedWriter.Format,
    ];

    /// <summary>The formats a kind of output can be written in, in help order.</summary>
    public static IReadOnlyList<OutputFormat> For(OutputKind kind) => [.. All.Where(f => f.Serves(kind))];

    /// <summary>The format named <paramref name="name"/> that serves <paramref name="kind"/>, or null.</summary>
    public static OutputFormat? Find(string name, OutputKind kind) =>
        All.FirstOrDefault(f => f.Name == name && f.Serves(kind));

    /// <summary>"text, json or chrome", for error messages.</summary>
    public static string Choices(OutputKind kind)
    {
        var names = For(kind).Select(f => f.Name).ToList();
        return names.Count == 1 ? names[0] : string.Join(", ", names.Take(names.Count - 1)) + " or " + names[^1];
    }
}
