namespace Pyprobe.Analysis.Tests;

/// <summary>An interpreter from scripts/fetch-pythons.sh's cache.</summary>
/// <param name="Launcher">Script that runs it; for builds needing their own libc it execs their ld.so.</param>
internal sealed record AnalysisPython(string Version, string FullVersion, string Binary, string Launcher, bool NeedsOwnLoader, string Loader, string LibraryPath)
{
    /// <summary>The interpreter as an exact command line without the launcher script: through its loader when needed.</summary>
    public List<string> DirectCommand() => Loader == "-"
        ? (LibraryPath == "-" ? [Binary] : ["/lib64/ld-linux-x86-64.so.2", "--library-path", LibraryPath, Binary])
        : [Loader, "--library-path", LibraryPath, Binary];
}

/// <summary>Reads the manifest of cached Debian CPython builds; a missing one fails the test.</summary>
internal static class AnalysisPythons
{
    private static string Manifest => Path.Combine(
        Environment.GetEnvironmentVariable("PYPROBE_CACHE") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "pyprobe"),
        "pythons", "pythons.tsv");

    public static AnalysisPython Get(string version)
    {
        if (!File.Exists(Manifest)) Assert.Fail($"{Manifest} is missing: run scripts/fetch-pythons.sh");
        foreach (var line in File.ReadLines(Manifest))
        {
            var f = line.Split('\t');
            if (f.Length >= 7 && f[0] == version) return new AnalysisPython(f[0], f[1], f[2], f[3], f[4] == "yes", f[5], f[6]);
        }
        Assert.Fail($"Python {version} is not in {Manifest}: run scripts/fetch-pythons.sh");
        return null!;
    }
}
