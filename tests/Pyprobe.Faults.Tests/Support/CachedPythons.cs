namespace Pyprobe.Faults.Tests.Support;

/// <summary>One row of pythons.tsv (scripts/fetch-pythons.sh).</summary>
public sealed record CachedPython(
    string Version, string FullVersion, string BinaryPath, string LauncherPath,
    bool NeedsOwnLoader, string LoaderPath, string LibraryPath, string? LibPythonPath)
{
    /// <summary>The folder the Debian packages were unpacked into (…/pythons/3.X/root).</summary>
    public string Root => BinaryPath[..BinaryPath.IndexOf("/usr/bin/", StringComparison.Ordinal)];

    /// <summary>
    /// A command line whose process runs the interpreter binary itself (not ld.so), for tools that look
    /// at /proc/PID/exe such as bpftrace: the libraries come through LD_LIBRARY_PATH.
    /// </summary>
    public List<string> ExecCommand(params string[] args)
    {
        if (NeedsOwnLoader) Assert.Fail($"Python {Version} needs its own loader; use Command()");
        List<string> command = LibraryPath is "-" or "" ? [BinaryPath] : ["/usr/bin/env", "LD_LIBRARY_PATH=" + LibraryPath, BinaryPath];
        command.AddRange(args);
        return command;
    }

    /// <summary>The interpreter as an exact command line (through its own loader when it needs one), without the launcher script.</summary>
    public List<string> Command(params string[] args)
    {
        List<string> command = NeedsOwnLoader
            ? [LoaderPath, "--library-path", LibraryPath, BinaryPath]
            : LibraryPath is "-" or "" ? [BinaryPath] : ["/lib64/ld-linux-x86-64.so.2", "--library-path", LibraryPath, BinaryPath];
        command.AddRange(args);
        return command;
    }
}

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
}

/// <summary>What the fault tests need from the machine; a missing piece fails the test with what to do.</summary>
public static class Requirements
{
    public static void EnsureRoot()
    {
        if (Environment.UserName != "root")
            Assert.Fail("this test loads BPF programs into the kernel and must run as root (sudo scripts/test.sh)");
    }

    public static string EnsureProgram(string name, string package)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin:/usr/sbin:/sbin").Split(':').Concat(["/usr/sbin", "/sbin"]))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        Assert.Fail($"{name} is missing: install the Debian package {package} (scripts/install-prerequisites.sh does)");
        return null!;
    }
}
