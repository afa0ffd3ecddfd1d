using System.Globalization;

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
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/maps");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ProcessNotFoundException(pid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsdtException($"Cannot read /proc/{pid}/maps: {e.Message} (reading another user's process needs root or CAP_SYS_PTRACE).", e);
        }
        return Parse(text);
    }

    public static IReadOnlyList<ProcMapsEntry> Parse(string text)
    {
        var result = new List<ProcMapsEntry>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            // Five space-separated fields, then the path which may itself contain spaces.
            var span = line.AsSpan();
            var fields = new string[5];
            int pos = 0;
            for (int f = 0; f < 5; f++)
            {
                while (pos < span.Length && span[pos] == ' ') pos++;
                int start = pos;
                while (pos < span.Length && span[pos] != ' ') pos++;
                fields[f] = span[start..pos].ToString();
            }
            while (pos < span.Length && span[pos] == ' ') pos++;
            string? path = pos < span.Length ? span[pos..].ToString() : null;

            var range = fields[0].Split('-');
            if (range.Length != 2
                || !ulong.TryParse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong lo)
                || !ulong.TryParse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong hi)
                || !ulong.TryParse(fields[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong off))
                throw new UsdtException($"Unexpected /proc/PID/maps line: '{line}'.");

            bool deleted = false;
            if (path is not null && path.EndsWith(DeletedSuffix, StringComparison.Ordinal))
            {
                deleted = true;
                path = path[..^DeletedSuffix.Length];
            }
            result.Add(new ProcMapsEntry(lo, hi, fields[1], off, path, deleted));
        }
        return result;
    }
}
