using System.Text.RegularExpressions;


namespace Pyprobe.Python.Processes;

/// <summary>A file mapped by a process, with the paths to use for it.</summary>
/// <param name="DisplayPath">Path as the process sees it (from /proc/PID/maps; container-relative).</param>
/// <param name="OpenPath">Path this tool reads the file through (usually /proc/PID/root/&lt;path&gt;).</param>
/// <param name="HostPath">Path to hand to the kernel for uprobe attach: the plain path when the process shares our mount namespace and root, otherwise /proc/PID/root/&lt;path&gt; (kernel-bpf.md §6.4).</param>
/// <param name="Kind">Why this file is a candidate.</param>
public sealed record MappedPythonFile(string DisplayPath, string OpenPath, string HostPath, MappedPythonFileKind Kind);

public enum MappedPythonFileKind
{
    /// <summary>A mapped libpython3.X.so* (shared-library builds, embedders).</summary>
    LibPython,
    /// <summary>The process's main executable (/proc/PID/exe), unless that is the dynamic loader.</summary>
    MainExecutable,
    /// <summary>A mapped file named python*, e.g. when started as "ld-linux-x86-64.so.2 … python3.X".</summary>
    PythonNamedFile,
}

/// <summary>
/// Finds the files in a process that may hold the CPython runtime: mapped libpython*.so*, the main
/// executable, and python-named mapped files (the interpreter started through the dynamic loader,
/// where /proc/PID/exe is ld-linux). Ordered by preference: libpython first, because when it is
/// mapped the interpreter code (and hence the probes) runs from there (cpython.md §1.6).
/// </summary>
public static partial class PythonProcessFiles
{
    [GeneratedRegex(@"^libpython\d+\.\d+[a-z]*\.so(\.\d+)*$")]
    private static partial Regex LibPythonName();

    [GeneratedRegex(@"^python\d*(\.\d+)?[a-z]*(-dbg)?$")]
    private static partial Regex PythonExecutableName();

    [GeneratedRegex(@"^ld-linux.*\.so(\.\d+)*$|^ld\.so(\.\d+)*$|^ld-\d.*\.so$")]
    private static partial Regex DynamicLoaderName();

    public static bool IsLibPythonFileName(string fileName) => LibPythonName().IsMatch(fileName);
    public static bool IsPythonExecutableFileName(string fileName) => PythonExecutableName().IsMatch(fileName);
    public static bool IsDynamicLoaderFileName(string fileName) => DynamicLoaderName().IsMatch(fileName);

    /// <summary>
    /// Lists the candidate files of process <paramref name="pid"/> in preference order.
    /// Also returns the main executable's path for messages.
    /// </summary>
    public static (IReadOnlyList<MappedPythonFile> Candidates, string Executable) Locate(int pid)
    {
        var (candidates, exe, _) = LocateWithMaps(pid);
        return (candidates, exe);
    }

    /// <summary><see cref="Locate"/>, with the process's mappings it read (for a caller that needs them too: one read of /proc/PID/maps, not two).</summary>
    public static (IReadOnlyList<MappedPythonFile> Candidates, string Executable, IReadOnlyList<ProcMapsEntry> Maps) LocateWithMaps(int pid)
    {
        if (!Directory.Exists($"/proc/{pid}"))
            throw new ProcessNotFoundException(pid);
        var maps = ProcMaps.Read(pid);
        string? exe = TryReadLink($"/proc/{pid}/exe");
        var ns = ProcessNamespace.For(pid);

        var candidates = new List<MappedPythonFile>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(ProcMapsEntry e, MappedPythonFileKind kind)
        {
            if (e.Path is null || !seen.Add(e.Path)) return;
            var path = ns.InsideRoot(e.Path);
            // A deleted file (upgraded package) is only reachable through map_files.
            string open = e.Deleted ? $"/proc/{pid}/map_files/{e.Start:x}-{e.End:x}" : ns.OpenPath(path);
            string host = e.Deleted ? open : ns.HostPath(path);
            candidates.Add(new MappedPythonFile(path, open, host, kind));
        }

        var files = maps.Where(m => m.Path is { Length: > 0 } p && p[0] == '/').ToList();
        foreach (var e in files)
            if (IsLibPythonFileName(System.IO.Path.GetFileName(e.Path!)))
                Add(e, MappedPythonFileKind.LibPython);

        if (exe is not null && !IsDynamicLoaderFileName(System.IO.Path.GetFileName(exe)))
        {
            // The exe link and the maps path normally agree; match by file name when the link was
            // rendered differently (e.g. outside our mount namespace).
            var entry = files.FirstOrDefault(e => e.Path == exe)
                ?? files.FirstOrDefault(e => System.IO.Path.GetFileName(e.Path) == System.IO.Path.GetFileName(exe));
            if (entry is not null)
                Add(entry, MappedPythonFileKind.MainExecutable);
            else if (seen.Add(exe))
                candidates.Add(new MappedPythonFile(exe, $"/proc/{pid}/exe", $"/proc/{pid}/exe", MappedPythonFileKind.MainExecutable));
        }

        foreach (var e in files)
            if (IsPythonExecutableFileName(System.IO.Path.GetFileName(e.Path!)))
                Add(e, MappedPythonFileKind.PythonNamedFile);

        return (candidates, exe ?? $"pid {pid}", maps);
    }

    private static string? TryReadLink(string link)
    {
        try
        {
            var target = new FileInfo(link).LinkTarget;
            if (target is null) return null;
            const string deleted = " (deleted)";
            return target.EndsWith(deleted, StringComparison.Ordinal) ? target[..^deleted.Length] : target;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
