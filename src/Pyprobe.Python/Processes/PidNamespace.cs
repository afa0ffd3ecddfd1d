using System.Runtime.InteropServices;

namespace Pyprobe.Python.Processes;

/// <summary>
/// The pid namespace a process lives in, when it is not pyprobe's own (a container, `unshare --pid`). CPython 3.11+
/// keeps each thread's id as the thread sees it (<c>gettid()</c> inside the namespace) in <c>native_thread_id</c>,
/// while the kernel's samples carry the host's ids; the walk asks the kernel for the id inside the namespace with
/// <c>bpf_get_ns_current_pid_tgid</c>, which names the namespace by the device and inode of its nsfs file.
/// </summary>
/// <param name="Device">The nsfs device as the kernel encodes a <c>dev_t</c> (major &lt;&lt; 20 | minor).</param>
/// <param name="Inode">The namespace's inode number (the N of <c>pid:[N]</c>).</param>
public sealed partial record PidNamespace(ulong Device, ulong Inode)
{
    /// <summary>The pid namespace of <paramref name="pid"/>, or null when it is pyprobe's own (or cannot be read: the ids are then taken as they are).</summary>
    public static PidNamespace? Of(int pid)
    {
        var theirs = Stat($"/proc/{pid}/ns/pid");
        var ours = Stat("/proc/self/ns/pid");
        return theirs is null || ours is null || theirs == ours ? null : theirs;
    }

    /// <summary>
    /// The host's id of each thread of <paramref name="pid"/>, keyed by the id the thread has in its own namespace
    /// (the last NSpid field of /proc/PID/task/TID/status; the first is the id in pyprobe's namespace).
    /// </summary>
    public static Dictionary<int, int> HostThreadIds(int pid)
    {
        var ids = new Dictionary<int, int>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                    {
                        if (!line.StartsWith("NSpid:", StringComparison.Ordinal)) continue;
                        var fields = line[6..].Split('\t', ' ').Where(f => f.Length > 0).ToArray();
                        if (fields.Length > 0 && int.TryParse(fields[0], out var host) && int.TryParse(fields[^1], out var inside)) ids[inside] = host;
                        break;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the thread is gone
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the process is gone
        return ids;
    }

    private const long SysStatx = 332; // x86-64
    private const int AtFdCwd = -100;
    private const uint StatxIno = 0x100;
    private const int StatxSize = 256, InoOffset = 32, DevMajorOffset = 136, DevMinorOffset = 140;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5);

    /// <summary>statx(2) of the namespace file (following the /proc magic link to the nsfs inode).</summary>
    private static unsafe PidNamespace? Stat(string path)
    {
        var name = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        var buffer = stackalloc byte[StatxSize];
        fixed (byte* p = name)
        {
            if (Syscall(SysStatx, AtFdCwd, (long)p, 0, StatxIno, (long)buffer) != 0) return null;
        }
        var inode = *(ulong*)(buffer + InoOffset);
        var major = *(uint*)(buffer + DevMajorOffset);
        var minor = *(uint*)(buffer + DevMinorOffset);
        return new PidNamespace(((ulong)major << 20) | minor, inode);
    }
}
