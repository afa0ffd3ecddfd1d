using Pyprobe.Usdt;

namespace Pyprobe.Python.Tests;

/// <summary>Reads a USDT semaphore in a live process through /proc/PID/mem.</summary>
internal static class TargetMemory
{
    public static ushort ReadSemaphore(int pid, string hostPath, UsdtSite site)
    {
        var address = RuntimeAddress(pid, hostPath, site.SemaphoreFileOffset);
        using var mem = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read);
        mem.Seek((long)address, SeekOrigin.Begin);
        var bytes = new byte[2];
        mem.ReadExactly(bytes);
        return BitConverter.ToUInt16(bytes);
    }

    /// <summary>The address at which a file offset of <paramref name="hostPath"/> is mapped in the process.</summary>
    public static ulong RuntimeAddress(int pid, string hostPath, ulong fileOffset)
    {
        var inode = new FileInfo(hostPath).Exists ? Inode(hostPath) : throw new FileNotFoundException(hostPath);
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
        var stat = new System.Diagnostics.ProcessStartInfo("stat", ["-L", "-c", "%i", path]) { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(stat)!;
        var text = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return text;
    }
}
