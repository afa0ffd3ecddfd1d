using Pyprobe.Bpf.Sys;
using System.Globalization;
using System.Text;

namespace Pyprobe.Usdt;

/// <summary>One line of /proc/PID/maps. <see cref="Path"/> is as the process sees it (container-relative).</summary>
public sealed record ProcMapsEntry(ulong Start, ulong End, string Permissions, ulong Offset, string? Path, bool Deleted)
{
    public bool IsExecutable => Permissions.Length > 2 && Permissions[2] == 'x';
}

/// <summary>Reads and parses /proc/PID/maps ("start-end perms offset dev inode [path]").</summary>
public static class ProcMaps
{
    private const string DeletedSuffix = " (deleted)";

    public static IReadOnlyList<ProcMapsEntry> Read(int pid)
    {
        byte[] text;
        try
        {
            // Bytes, parsed in place: a text reader and a string per line and field were ~100 KB of garbage for a
            // 7 KB file, read on every attach (fresh pages cost their faults).
            text = File.ReadAllBytes($"/proc/{pid}/maps");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ProcessNotFoundException(pid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsdtException($"Cannot read /proc/{pid}/maps: {e.Message} {Capabilities.ProcessAccessHint("reading another user's process")}.", e);
        }
        return Parse(text);
    }

    public static IReadOnlyList<ProcMapsEntry> Parse(string text) => Parse(Encoding.UTF8.GetBytes(text));

    public static IReadOnlyList<ProcMapsEntry> Parse(ReadOnlySpan<byte> text)
    {
        var result = new List<ProcMapsEntry>();
        // A file is mapped several times in a row (text, data, bss...): its path string is made once.
        string? lastPath = null;
        byte[]? lastPathBytes = null;
        while (!text.IsEmpty)
        {
            var newline = text.IndexOf((byte)'\n');
            var line = newline < 0 ? text : text[..newline];
            text = newline < 0 ? default : text[(newline + 1)..];
            if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
            if (line.IsEmpty) continue;
            // Five space-separated fields, then the path which may itself contain spaces.
            var rest = line;
            var range = NextField(ref rest);
            var permissions = NextField(ref rest);
            var offset = NextField(ref rest);
            NextField(ref rest); // device
            NextField(ref rest); // inode
            rest = rest.TrimStart((byte)' ');
            var dash = range.IndexOf((byte)'-');
            if (dash < 0 || !TryParseHex(range[..dash], out var lo) || !TryParseHex(range[(dash + 1)..], out var hi) || !TryParseHex(offset, out var off))
                throw new UsdtException($"Unexpected /proc/PID/maps line: '{Encoding.UTF8.GetString(line)}'.");

            var deleted = rest.EndsWith(" (deleted)"u8);
            if (deleted) rest = rest[..^DeletedSuffix.Length];
            string? path = null;
            if (!rest.IsEmpty)
            {
                if (lastPathBytes is null || !rest.SequenceEqual(lastPathBytes))
                {
                    lastPathBytes = rest.ToArray();
                    lastPath = Encoding.UTF8.GetString(rest);
                }
                path = lastPath;
            }
            result.Add(new ProcMapsEntry(lo, hi, Permissions(permissions), off, path, deleted));
        }
        return result;
    }

    private static ReadOnlySpan<byte> NextField(ref ReadOnlySpan<byte> rest)
    {
        rest = rest.TrimStart((byte)' ');
        var end = rest.IndexOf((byte)' ');
        if (end < 0) end = rest.Length;
        var field = rest[..end];
        rest = rest[end..];
        return field;
    }

    private static bool TryParseHex(ReadOnlySpan<byte> digits, out ulong value) =>
        ulong.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);

    /// <summary>The permission strings a process has are a handful: the common ones are shared, not made per line.</summary>
    private static string Permissions(ReadOnlySpan<byte> field) => field switch
    {
        _ when field.SequenceEqual("r--p"u8) => "r--p",
        _ when field.SequenceEqual("r-xp"u8) => "r-xp",
        _ when field.SequenceEqual("rw-p"u8) => "rw-p",
        _ when field.SequenceEqual("---p"u8) => "---p",
        _ when field.SequenceEqual("rwxp"u8) => "rwxp",
        _ => Encoding.ASCII.GetString(field),
    };
}
