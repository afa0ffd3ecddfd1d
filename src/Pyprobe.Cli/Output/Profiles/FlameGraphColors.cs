using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// Fill colors of the flame graph: Python frames in warm hues chosen by their file, so one module keeps one
/// color across the graph and between runs; native frames in cool hues by their file; the other kinds in colors of their own.
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
        FrameKind.Native => ForModule(frame.File),
        _ => Truncated,
    };

    /// <summary>Native frames (<c>--native</c>) in cool hues, one per file, so C code stands apart from the warm Python frames.</summary>
    public static string ForModule(string module)
    {
        uint hash = Fnv1a(module);
        int r = 70 + (int)(hash % 50);
        int g = 150 + (int)((hash >> 8) % 60);
        int b = 170 + (int)((hash >> 16) % 60);
        return string.Create(CultureInfo.InvariantCulture, $"rgb({r},{g},{b})");
    }

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
