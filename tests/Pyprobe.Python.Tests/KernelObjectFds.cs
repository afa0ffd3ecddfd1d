namespace Pyprobe.Python.Tests;

/// <summary>
/// Counts this process's fds that are kernel objects (BPF maps, programs, links, perf events, epoll,
/// eventfd). Plain files are left out: the test host opens assemblies lazily, which is not a leak.
/// </summary>
internal static class KernelObjectFds
{
    public static List<string> List() => Directory.GetFiles("/proc/self/fd")
        .Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } })
        .OfType<string>()
        .Where(target => target.StartsWith("anon_inode:", StringComparison.Ordinal))
        .Order()
        .ToList();
}
