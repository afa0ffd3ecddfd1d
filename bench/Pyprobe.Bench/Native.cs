using System.Runtime.InteropServices;

namespace Pyprobe.Bench;

internal static unsafe partial class Native
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, long a1, long a2, long a3);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    public const int SysBpf = 321, SysPidfdOpen = 434, SysPidfdGetfd = 438;
    public const int SIGINT = 2, SIGTERM = 15;

    /// <summary>A copy of file descriptor <paramref name="fd"/> of process <paramref name="pid"/> (pidfd_getfd).</summary>
    public static int StealFd(int pid, int fd)
    {
        var pidfd = Syscall(SysPidfdOpen, pid, 0, 0);
        if (pidfd < 0) throw new InvalidOperationException($"pidfd_open({pid}) failed: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            var copy = Syscall(SysPidfdGetfd, pidfd, fd, 0);
            if (copy < 0) throw new InvalidOperationException($"pidfd_getfd({pid}, {fd}) failed: errno {Marshal.GetLastPInvokeError()}");
            return (int)copy;
        }
        finally
        {
            Close((int)pidfd);
        }
    }

    /// <summary>Peak resident set size of a live process (VmHWM), in KiB; 0 when unknown.</summary>
    public static long PeakRssKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0]);
        }
        catch (IOException) { }
        return 0;
    }
}
