namespace Pyprobe.Usdt;

/// <summary>
/// Decides how to reach a process's files. Paths in /proc/PID/maps are relative to the process's
/// root and mount namespace; /proc/PID/root/&lt;path&gt; reaches them from ours (containers,
/// chroots). For the kernel (uprobe attach resolves paths in the caller's namespace) the plain path
/// is used when nothing differs, so events and messages show the familiar path (kernel-bpf.md §6.4).
/// </summary>
public sealed class ProcessNamespace
{
    private readonly int _pid;
    private readonly bool _sameView;
    private readonly bool _rootAccessible;
    private readonly string? _rootPrefix;

    private ProcessNamespace(int pid, bool sameView, bool rootAccessible, string? rootPrefix)
    {
        _pid = pid;
        _sameView = sameView;
        _rootAccessible = rootAccessible;
        _rootPrefix = rootPrefix;
    }

    public static ProcessNamespace For(int pid)
    {
        string? selfNs = Link("/proc/self/ns/mnt");
        string? ns = Link($"/proc/{pid}/ns/mnt");
        string? root = Link($"/proc/{pid}/root");
        // Unknown (unreadable) counts as "different" only if the process's root is readable at all.
        bool sameView = selfNs is not null && selfNs == ns && root == "/";
        bool rootAccessible = Directory.Exists($"/proc/{pid}/root/");
        return new ProcessNamespace(pid, sameView || (ns is null && root is null), rootAccessible, root is { Length: > 1 } && root[0] == '/' ? root.TrimEnd('/') : null);
    }

    /// <summary>
    /// The path as the process sees it. The kernel renders /proc/PID/maps paths against the reader's
    /// root, so in a chroot (also one inside its own mount namespace) they carry the chroot directory
    /// as a prefix, the same one /proc/PID/root shows: "/srv/jail/usr/bin/python3.9" is
    /// "/usr/bin/python3.9" below /proc/PID/root.
    /// </summary>
    public string InsideRoot(string path)
        => _rootPrefix is not null && path.Length > _rootPrefix.Length && path.StartsWith(_rootPrefix, StringComparison.Ordinal) && path[_rootPrefix.Length] == '/'
            ? path[_rootPrefix.Length..]
            : path;

    /// <summary>Where to read the file from: through /proc/PID/root when we may, else the plain path.</summary>
    public string OpenPath(string path) => _rootAccessible ? $"/proc/{_pid}/root{path}" : path;

    /// <summary>What to give the kernel for attaching.</summary>
    public string HostPath(string path) => _sameView ? path : $"/proc/{_pid}/root{path}";

    private static string? Link(string path)
    {
        try { return new FileInfo(path).LinkTarget; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
