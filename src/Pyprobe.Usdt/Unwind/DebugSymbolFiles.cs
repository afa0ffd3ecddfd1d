using System.Buffers.Binary;
using System.Text;
using Pyprobe.Usdt.Elf;
using SharpCompress.Compressors.Xz;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// Where a stripped file's lost function names can still be found, as gdb and perf look for them: a separate debug file
/// (<c>objcopy --only-keep-debug</c>, what distributions ship in -dbg, -dbgsym and -debuginfo packages) under
/// /usr/lib/debug by the file's build id, else by its <c>.gnu_debuglink</c> name beside it; or the file's own
/// MiniDebugInfo (<c>.gnu_debugdata</c>: an xz-compressed ELF whose symbol table holds the static functions, which
/// Fedora and RHEL put in every binary). Paths under a process's /proc/PID/root are looked for under the same root.
/// </summary>
internal static class DebugSymbolFiles
{
    public const string DebugRoot = "/usr/lib/debug";

    // A MiniDebugInfo holds function symbols only: a few hundred KB even for libpython. Larger is not one.
    private const int MaxMiniDebugInfo = 64 << 20;

    /// <summary>The separate debug file of <paramref name="elf"/> whose build id is its own, or null.</summary>
    public static ElfImage? SeparateDebugFile(ElfImage elf, string debugRoot = DebugRoot)
    {
        var buildId = BuildId(elf);
        var (root, path) = SplitRoot(elf.Path);
        var candidates = new List<string>();
        if (buildId is { Length: > 1 })
        {
            var hex = Convert.ToHexStringLower(buildId);
            candidates.Add($"{root}{debugRoot}/.build-id/{hex[..2]}/{hex[2..]}.debug");
        }
        if (DebugLink(elf) is { } link)
        {
            var directory = System.IO.Path.GetDirectoryName(path) ?? "/";
            candidates.Add($"{root}{directory}/{link}");
            candidates.Add($"{root}{directory}/.debug/{link}");
            candidates.Add($"{root}{debugRoot}{directory}/{link}");
        }
        foreach (var candidate in candidates)
        {
            if (candidate == elf.Path || !File.Exists(candidate)) continue;
            try
            {
                var debug = ElfImage.Open(candidate);
                // A debug file of another build would name the wrong functions: its build id must be this file's.
                if (buildId is null || BuildId(debug) is { } other && other.AsSpan().SequenceEqual(buildId)) return debug;
            }
            catch (UsdtException)
            {
                // unreadable: try the next place
            }
        }
        return null;
    }

    /// <summary>The ELF image inside <paramref name="elf"/>'s <c>.gnu_debugdata</c>, or null when it has none or it does not read.</summary>
    public static ElfImage? MiniDebugInfo(ElfImage elf)
    {
        if (elf.FindSection(".gnu_debugdata") is not { } section || section.Size is 0 or > MaxMiniDebugInfo) return null;
        try
        {
            using var xz = new XZStream(new MemoryStream(elf.ReadSection(section), writable: false));
            using var image = new MemoryStream();
            var buffer = new byte[64 << 10];
            int read;
            while ((read = xz.Read(buffer, 0, buffer.Length)) > 0)
            {
                image.Write(buffer, 0, read);
                if (image.Length > MaxMiniDebugInfo * 4L) return null;
            }
            return ElfImage.OpenInMemory(elf.Path + "[.gnu_debugdata]", image.GetBuffer(), (int)image.Length);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A damaged section (the decoder's own exceptions, a truncated image) names nothing; the file's exports still do.
            return null;
        }
    }

    /// <summary>The GNU build id note's bytes, or null.</summary>
    private static byte[]? BuildId(ElfImage elf)
    {
        if (elf.FindSection(".note.gnu.build-id") is not { } section) return null;
        var note = elf.ReadSection(section, 4096);
        // namesz, descsz, type (3: NT_GNU_BUILD_ID), "GNU\0", then the id.
        if (note.Length < 16) return null;
        var nameSize = BinaryPrimitives.ReadUInt32LittleEndian(note);
        var descSize = BinaryPrimitives.ReadUInt32LittleEndian(note.AsSpan(4));
        var type = BinaryPrimitives.ReadUInt32LittleEndian(note.AsSpan(8));
        var descStart = 12 + (int)((nameSize + 3) & ~3u);
        if (type != 3 || nameSize != 4 || descSize == 0 || descStart + descSize > note.Length) return null;
        return note.AsSpan(descStart, (int)descSize).ToArray();
    }

    /// <summary>The file name <c>.gnu_debuglink</c> gives (no directories in it), or null.</summary>
    private static string? DebugLink(ElfImage elf)
    {
        if (elf.FindSection(".gnu_debuglink") is not { } section) return null;
        var bytes = elf.ReadSection(section, 4096);
        var end = Array.IndexOf(bytes, (byte)0);
        if (end <= 0) return null;
        var name = Encoding.UTF8.GetString(bytes, 0, end);
        return name.Contains('/') || name is "." or ".." ? null : name;
    }

    /// <summary>"/proc/PID/root" and the path inside it, or "" and the path.</summary>
    private static (string Root, string Path) SplitRoot(string path)
    {
        if (!path.StartsWith("/proc/", StringComparison.Ordinal)) return ("", path);
        var rootEnd = path.IndexOf("/root/", 6, StringComparison.Ordinal);
        if (rootEnd < 0 || !path.AsSpan(6, rootEnd - 6).ToString().All(char.IsAsciiDigit)) return ("", path);
        return (path[..(rootEnd + 5)], path[(rootEnd + 5)..]);
    }
}
