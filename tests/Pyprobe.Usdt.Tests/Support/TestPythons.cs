using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests;

/// <summary>One row of pythons.tsv written by scripts/fetch-pythons.sh.</summary>
public sealed record CachedPython(
    string Version, string FullVersion, string BinaryPath, string LauncherPath,
    bool NeedsOwnLoader, string LoaderPath, string LibraryPath, string? LibPythonPath);

/// <summary>
/// Reads the interpreter cache manifest ${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/pythons.tsv
/// (columns: version, full version, binary, launcher, needs_own_loader, loader, library path,
/// libpython or "-"). Tests call <see cref="Get"/>; a missing interpreter fails under CI=true and
/// otherwise makes the test return early with a message.
/// </summary>
public static class TestPythons
{
    public static string CacheDirectory =>
        Path.Combine(Environment.GetEnvironmentVariable("PYPROBE_CACHE") is { Length: > 0 } c
            ? c : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "pyprobe"), "pythons");

    public static string ManifestPath => Path.Combine(CacheDirectory, "pythons.tsv");

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static IReadOnlyList<CachedPython> All()
    {
        if (!File.Exists(ManifestPath)) return [];
        var result = new List<CachedPython>();
        foreach (var line in File.ReadAllLines(ManifestPath))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var f = line.Split('\t');
            if (f.Length < 8 || f[0] == "version") continue; // header or malformed
            result.Add(new CachedPython(f[0], f[1], f[2], f[3], f[4] == "yes", f[5], f[6], f[7] is "-" or "" ? null : f[7]));
        }
        return result;
    }

    /// <summary>The cached interpreter for "3.X", or null after reporting why (fails under CI=true).</summary>
    public static CachedPython? Get(string version, ITestOutputHelper output)
    {
        var p = All().FirstOrDefault(x => x.Version == version && File.Exists(x.BinaryPath));
        if (p is null)
            Missing($"cached Python {version} (run scripts/fetch-pythons.sh; manifest {ManifestPath})", output);
        return p;
    }

    /// <summary>Reports an unavailable prerequisite: Assert.Fail under CI=true, a message otherwise.</summary>
    public static void Missing(string what, ITestOutputHelper output)
    {
        if (IsCi)
            Assert.Fail($"Missing {what} (CI=true).");
        output.WriteLine($"SKIPPED: missing {what}.");
    }

    /// <summary>pyenv-built interpreters (no USDT probes): (version dir, python3.X path).</summary>
    public static IReadOnlyList<(string Version, string Binary)> Pyenv()
    {
        var root = "/root/.pyenv/versions";
        if (!Directory.Exists(root)) return [];
        var list = new List<(string, string)>();
        foreach (var dir in Directory.GetDirectories(root).Order())
        {
            var v = Path.GetFileName(dir);
            var parts = v.Split('.');
            if (parts.Length < 2 || parts[0] != "3") continue;
            var bin = Path.Combine(dir, "bin", $"python{parts[0]}.{parts[1]}");
            if (File.Exists(bin)) list.Add((v, bin));
        }
        return list;
    }
}
