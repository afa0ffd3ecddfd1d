namespace Pyprobe.Python.Tests;

/// <summary>
/// Counts this process's fds that are kernel objects (BPF maps, programs, links, perf events, epoll,
/// eventfd). Plain files are left out: the test host opens assemblies lazily, which is not a leak.
/// </summary>
internal static class KernelObjectFds
{
    /// <summary>
    /// <see cref="List"/> once the process-lifetime kernel objects exist (the kernel feature probes, which an earlier
    /// test may have started on a thread of their own, and the BTF shared by every program with callbacks) and objects
    /// left to finalizers are gone: a count taken before a session is then not changed by anything but the session.
    /// </summary>
    public static List<string> Settled()
    {
        Pyprobe.Bpf.Features.KernelFeatures.ProbeAhead();
        if (Pyprobe.Bpf.Features.KernelFeatures.HasBpfLoop) _ = Pyprobe.Bpf.Btf.FunctionBtf.Fd;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return List();
    }

    public static List<string> List() => Directory.GetFiles("/proc/self/fd")
        .Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } })
        .OfType<string>()
        .Where(target => target.StartsWith("anon_inode:", StringComparison.Ordinal))
        .Order()
        .ToList();
}
