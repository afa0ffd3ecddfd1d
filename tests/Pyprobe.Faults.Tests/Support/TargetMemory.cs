using Pyprobe.Usdt;

namespace Pyprobe.Faults.Tests.Support;

/// <summary>Reads USDT semaphores in a live process through /proc/PID/mem.</summary>
public static class TargetMemory
{
    /// <summary>The value of every distinct semaphore of the python provider in <paramref name="hostPath"/>, by probe name.</summary>
    public static Dictionary<string, ushort> ReadSemaphores(int pid, string hostPath, UsdtBinary binary)
    {
        var values = new Dictionary<string, ushort>(StringComparer.Ordinal);
        foreach (var probe in binary.Probes.Where(p => p.Provider == "python"))
        {
            var site = probe.Sites[0];
            if (site.SemaphoreFileOffset == 0) continue;
            values[probe.Name] = ReadSemaphore(pid, hostPath, site.SemaphoreFileOffset);
        }
        return values;
    }

    public static ushort ReadSemaphore(int pid, string hostPath, ulong semaphoreFileOffset)
    {
        var address = RuntimeAddress(pid, hostPath, semaphoreFileOffset);
        using var mem = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read);
        mem.Seek((long)address, SeekOrigin.Begin);
        var bytes = new byte[2];
        mem.ReadExactly(bytes);
        return BitConverter.ToUInt16(bytes);
    }

    /// <summary>The address at which a file offset of <paramref name="hostPath"/> is mapped writable in the process (matched by device and inode).</summary>
    public static ulong RuntimeAddress(int pid, string hostPath, ulong fileOffset)
    {
        var inode = Inode(hostPath);
        foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
        {
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 6 || parts[4] != inode) continue;
            var range = parts[0].Split('-');
            var start = Convert.ToUInt64(range[0], 16);
            var end = Convert.ToUInt64(range[1], 16);
            var offset = Convert.ToUInt64(parts[2], 16);
            if (fileOffset >= offset && fileOffset < offset + (end - start) && parts[1].StartsWith("rw", StringComparison.Ordinal))
                return start + (fileOffset - offset);
        }
        throw new InvalidOperationException($"file offset 0x{fileOffset:x} of {hostPath} is not mapped writable in process {pid}");
    }

    private static string Inode(string path)
    {
        var info = new System.Diagnostics.ProcessStartInfo("stat", ["-L", "-c", "%i", path]) { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(info)!;
        var text = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        if (process.ExitCode != 0 || text.Length == 0) throw new FileNotFoundException(path);
        return text;
    }
}
