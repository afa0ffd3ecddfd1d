namespace Pyprobe.Cli.Tests;

/// <summary>One row of pythons.tsv (scripts/fetch-pythons.sh).</summary>
public sealed record CachedPython(
    string Version, string FullVersion, string BinaryPath, string LauncherPath,
    bool NeedsOwnLoader, string LoaderPath, string LibraryPath, string? LibPythonPath);

/// <summary>
/// The Debian interpreters in ${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/pythons.tsv
/// (tab-separated, no header: version, full_version, binary, launcher, needs_own_loader,
/// loader, library_path, libpython_so). A missing manifest or interpreter fails the test.
/// </summary>
public static class CachedPythons
{
    public static string ManifestPath =>
        Path.Combine(Environment.GetEnvironmentVariable("PYPROBE_CACHE") is { Length: > 0 } cache
            ? cache
            : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "pyprobe"), "pythons", "pythons.tsv");

    public static CachedPython Get(string version)
    {
        if (!File.Exists(ManifestPath))
            Assert.Fail($"{ManifestPath} is missing: run scripts/fetch-pythons.sh (scripts/test.sh does)");
        foreach (var line in File.ReadAllLines(ManifestPath))
        {
            var f = line.Split('\t');
            if (f.Length < 8 || f[0] != version) continue;
            var python = new CachedPython(f[0], f[1], f[2], f[3], f[4] == "yes", f[5], f[6], f[7] is "-" or "" ? null : f[7]);
            if (!File.Exists(python.BinaryPath) || !File.Exists(python.LauncherPath))
                Assert.Fail($"Python {version} is in {ManifestPath} but {python.BinaryPath} or {python.LauncherPath} is missing: run scripts/fetch-pythons.sh {version}");
            return python;
        }
        Assert.Fail($"Python {version} is not in {ManifestPath}: run scripts/fetch-pythons.sh {version}");
        return null!;
    }

    /// <summary>pyenv-built CPython 3 executables (built without --with-dtrace), e.g. /root/.pyenv/versions/3.11.7/bin/python3.11.</summary>
    public static IReadOnlyList<string> Pyenv()
    {
        var root = Path.Combine(Environment.GetEnvironmentVariable("PYENV_ROOT") is { Length: > 0 } r
            ? r : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".pyenv"), "versions");
        if (!Directory.Exists(root)) return [];
        var list = new List<string>();
        foreach (var dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
        {
            var parts = Path.GetFileName(dir).Split('.');
            if (parts.Length < 2 || parts[0] != "3") continue;
            var bin = Path.Combine(dir, "bin", $"python3.{parts[1]}");
            if (File.Exists(bin)) list.Add(bin);
        }
        return list;
    }

    /// <summary>
    /// The interpreter a test names "debian:3.X" (the cache's launcher script, which runs its own loader) or
    /// "pyenv:3.X.Y" (the pyenv build's executable), as one path to run.
    /// </summary>
    public static string Executable(string interpreter)
    {
        var (kind, version) = (interpreter.Split(':')[0], interpreter.Split(':')[1]);
        if (kind == "debian") return Get(version).LauncherPath;
        var path = $"/root/.pyenv/versions/{version}/bin/python{string.Join('.', version.Split('.').Take(2))}";
        if (!File.Exists(path)) Assert.Fail($"{path} is missing: the pyenv builds are part of this machine");
        return path;
    }
}
