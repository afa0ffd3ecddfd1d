using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Pyprobe.Faults.Tests.Support;

public enum BpfObjectKind { Program, Map, Link }

/// <summary>A BPF program, map or link the kernel holds, as BPF_OBJ_GET_INFO_BY_FD describes it.</summary>
/// <param name="Type">bpf_prog_type, bpf_map_type or bpf_link_type.</param>
/// <param name="Name">Program or map name (links have none).</param>
/// <param name="ProgramId">For a link, the program it runs.</param>
/// <param name="UprobeMultiPid">For a uprobe_multi link (type 12), the pid filter (0 = every process).</param>
/// <param name="UprobeMultiPath">For a uprobe_multi link, the file.</param>
public sealed record BpfObjectInfo(BpfObjectKind Kind, uint Id, uint Type, string Name, uint ProgramId = 0, uint UprobeMultiCount = 0, uint UprobeMultiPid = 0, string UprobeMultiPath = "");

/// <summary>
/// Enumerates the kernel's BPF objects with raw bpf() calls (no bpftool here): *_GET_NEXT_ID walks the
/// ids, *_GET_FD_BY_ID opens one, BPF_OBJ_GET_INFO_BY_FD describes it. Layouts from the UAPI header:
/// bpf_prog_info.name at 64, bpf_map_info.name at 24, bpf_link_info.uprobe_multi {path 16, path_size 48,
/// count 52, flags 56, pid 60}; <c>BpfObjectsTests</c> reads back objects the test created itself to prove them.
/// </summary>
public static unsafe partial class BpfObjects
{
    private const long SysBpf = 321;
    private const int ProgGetNextId = 11, MapGetNextId = 12, ProgGetFdById = 13, MapGetFdById = 14, ObjGetInfoByFd = 15, LinkGetFdById = 30, LinkGetNextId = 31;
    public const uint LinkTypeUprobeMulti = 12, LinkTypePerfEvent = 7;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    private static long Bpf(int command, byte* attr, int size)
    {
        while (true)
        {
            var result = Syscall(SysBpf, command, (long)attr, size);
            if (result >= 0) return result;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != 4 /* EINTR */) return -errno;
        }
    }

    /// <summary>Every id of <paramref name="kind"/> alive now.</summary>
    public static List<uint> Ids(BpfObjectKind kind)
    {
        var command = kind switch { BpfObjectKind.Program => ProgGetNextId, BpfObjectKind.Map => MapGetNextId, _ => LinkGetNextId };
        var ids = new List<uint>();
        uint start = 0;
        var attr = stackalloc byte[16];
        while (true)
        {
            new Span<byte>(attr, 16).Clear();
            *(uint*)attr = start;
            var result = Bpf(command, attr, 16);
            if (result == -2 /* ENOENT: no more */) return ids;
            if (result < 0) throw new InvalidOperationException($"bpf GET_NEXT_ID({kind}) failed: errno {-result}");
            start = *(uint*)(attr + 4);
            ids.Add(start);
        }
    }

    /// <summary>Opens the object; null when the id no longer exists (ENOENT).</summary>
    private static int? Open(BpfObjectKind kind, uint id)
    {
        var command = kind switch { BpfObjectKind.Program => ProgGetFdById, BpfObjectKind.Map => MapGetFdById, _ => LinkGetFdById };
        var attr = stackalloc byte[16];
        new Span<byte>(attr, 16).Clear();
        *(uint*)attr = id;
        var fd = Bpf(command, attr, 16);
        if (fd == -2) return null;
        if (fd < 0) throw new InvalidOperationException($"bpf GET_FD_BY_ID({kind} {id}) failed: errno {-fd}");
        return (int)fd;
    }

    public static bool Exists(BpfObjectKind kind, uint id)
    {
        if (Open(kind, id) is not int fd) return false;
        Close(fd);
        return true;
    }

    /// <summary>Describes object <paramref name="id"/>; null when it is gone.</summary>
    public static BpfObjectInfo? Info(BpfObjectKind kind, uint id)
    {
        if (Open(kind, id) is not int fd) return null;
        try
        {
            var info = new byte[512];
            var path = new byte[4096];
            fixed (byte* infoPointer = info)
            fixed (byte* pathPointer = path)
            {
                if (kind == BpfObjectKind.Link)
                {
                    *(ulong*)(infoPointer + 16) = (ulong)pathPointer;
                    *(uint*)(infoPointer + 48) = (uint)path.Length;
                }
                var attr = stackalloc byte[16];
                new Span<byte>(attr, 16).Clear();
                *(uint*)attr = (uint)fd;
                *(uint*)(attr + 4) = (uint)info.Length;
                *(ulong*)(attr + 8) = (ulong)infoPointer;
                var result = Bpf(ObjGetInfoByFd, attr, 16);
                if (result == -22 && kind == BpfObjectKind.Link)
                {
                    // Another kind of link (a perf-event link of a CPU-clock sampler, say) reads the path fields as
                    // its own: ask again with nothing but the common header.
                    info.AsSpan().Clear();
                    result = Bpf(ObjGetInfoByFd, attr, 16);
                }
                if (result == -2) return null;
                if (result < 0) throw new InvalidOperationException($"bpf OBJ_GET_INFO_BY_FD({kind} {id}) failed: errno {-result}");
            }
            var type = BinaryPrimitives.ReadUInt32LittleEndian(info);
            var infoId = BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(4));
            return kind switch
            {
                BpfObjectKind.Program => new BpfObjectInfo(kind, infoId, type, CString(info.AsSpan(64, 16))),
                BpfObjectKind.Map => new BpfObjectInfo(kind, infoId, type, CString(info.AsSpan(24, 16))),
                _ => type == LinkTypeUprobeMulti
                    ? new BpfObjectInfo(kind, infoId, type, "", BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(8)),
                        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(52)), BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(60)), CString(path))
                    : new BpfObjectInfo(kind, infoId, type, "", BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(8))),
            };
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Every object of <paramref name="kind"/> alive now, described (objects that vanish meanwhile are left out).</summary>
    public static List<BpfObjectInfo> All(BpfObjectKind kind) => Ids(kind).Select(id => Info(kind, id)).OfType<BpfObjectInfo>().ToList();

    /// <summary>uprobe_multi links whose pid filter is <paramref name="pid"/>.</summary>
    public static List<BpfObjectInfo> UprobeMultiLinksFor(int pid) =>
        All(BpfObjectKind.Link).Where(l => l.Type == LinkTypeUprobeMulti && l.UprobeMultiPid == (uint)pid).ToList();

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        var end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? bytes : bytes[..end]);
    }

    /// <summary>The BPF objects a process holds fds of, from /proc/PID/fdinfo (prog_id, map_id, link_id lines).</summary>
    public static HashSet<(BpfObjectKind Kind, uint Id)> HeldBy(int pid)
    {
        var held = new HashSet<(BpfObjectKind, uint)>();
        string[] files;
        try { files = Directory.GetFiles($"/proc/{pid}/fdinfo"); }
        catch (IOException) { return held; }
        foreach (var file in files)
        {
            string[] lines;
            try { lines = File.ReadAllLines(file); }
            catch (IOException) { continue; }
            foreach (var line in lines)
            {
                var colon = line.IndexOf(':');
                if (colon < 0) continue;
                var key = line[..colon];
                BpfObjectKind? kind = key switch { "prog_id" => BpfObjectKind.Program, "map_id" => BpfObjectKind.Map, "link_id" => BpfObjectKind.Link, _ => null };
                if (kind is { } k && uint.TryParse(line.AsSpan(colon + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                    held.Add((k, id));
            }
        }
        return held;
    }

    /// <summary>Waits until none of <paramref name="objects"/> exists any more (the kernel frees them after an RCU period); returns those still alive.</summary>
    public static List<(BpfObjectKind Kind, uint Id)> WaitUntilGone(IEnumerable<(BpfObjectKind Kind, uint Id)> objects, TimeSpan timeout)
    {
        var list = objects.ToList();
        var alive = list;
        Posix.WaitFor(() => (alive = list.Where(o => Exists(o.Kind, o.Id)).ToList()).Count == 0, timeout);
        return alive;
    }

    /// <summary>Entries of tracefs's uprobe_events (where mounted) that mention <paramref name="text"/>: pyprobe never creates any.</summary>
    public static List<string> TracefsUprobeEvents(string text)
    {
        var found = new List<string>();
        foreach (var file in new[] { "/sys/kernel/tracing/uprobe_events", "/sys/kernel/debug/tracing/uprobe_events" })
        {
            if (!File.Exists(file)) continue;
            try { found.AddRange(File.ReadAllLines(file).Where(l => l.Contains(text, StringComparison.Ordinal) || l.Contains("pyprobe", StringComparison.Ordinal))); }
            catch (IOException) { }
        }
        return found;
    }
}

/// <summary>This process's fds that are kernel objects (anon inodes: BPF maps, programs, links, perf events, epoll, eventfd).</summary>
public static class KernelObjectFds
{
    public static List<string> List() => Directory.GetFiles("/proc/self/fd")
        .Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } })
        .OfType<string>()
        .Where(target => target.StartsWith("anon_inode:", StringComparison.Ordinal))
        .Order()
        .ToList();
}
