using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// Fill colors of the flame graph: Python frames in warm hues chosen by their file, so one module keeps one
/// color across the graph and between runs; the other kinds in colors of their own.
/// </summary>
internal static class FlameGraphColors
{
    public const string Root = "rgb(200,200,190)";
    public const string ThreadRoot = "rgb(130,170,215)";
    public const string Unknown = "rgb(175,175,175)";
    public const string Truncated = "rgb(190,140,210)";

    public static string For(StackFrame frame) => frame.Kind switch
    {
        FrameKind.Python => ForFile(frame.File),
        FrameKind.ThreadRoot => ThreadRoot,
        FrameKind.Unknown => Unknown,
        _ => Truncated,
    };

    /// <summary>red→orange→yellow, picked by a stable hash of the path (string.GetHashCode differs per run).</summary>
    public static string ForFile(string file)
    {
        uint hash = Fnv1a(file);
        int r = 205 + (int)(hash % 51);
        int g = 60 + (int)((hash >> 8) % 150);
        int b = 30 + (int)((hash >> 16) % 40);
        return string.Create(CultureInfo.InvariantCulture, $"rgb({r},{g},{b})");
    }

    private static uint Fnv1a(string text)
    {
        uint hash = 2166136261;
        foreach (char c in text)
        {
            hash ^= c;
            hash *= 16777619;
        }
        return hash;
    }
}
