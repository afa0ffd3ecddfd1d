using System.Text.Json;

namespace Pyprobe.Events.Tests;

/// <summary>The JSON lines of `pyprobe trace --format json`, parsed, with helpers to count events.</summary>
public sealed class TraceOutput
{
    public TraceOutput(string stdout)
    {
        Events = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => line.StartsWith('{'))
            .Select(line => JsonDocument.Parse(line).RootElement.Clone())
            .ToList();
    }

    public IReadOnlyList<JsonElement> Events { get; }

    public IEnumerable<JsonElement> OfProbe(string probe) => Events.Where(e => e.GetProperty("probe").GetString() == probe);

    public int Count(string probe, string field, string value) => OfProbe(probe).Count(e => e.GetProperty(field).GetString() == value);

    /// <summary>Events between the workload's audit markers "pyprobe.begin" and "pyprobe.end".</summary>
    public IReadOnlyList<JsonElement> BetweenMarkers()
    {
        var begin = Events.ToList().FindIndex(e => IsAudit(e, "pyprobe.begin"));
        var end = Events.ToList().FindIndex(e => IsAudit(e, "pyprobe.end"));
        Assert.True(begin >= 0 && end > begin, $"audit markers not found (begin {begin}, end {end}) in {Events.Count} events");
        return Events.Skip(begin + 1).Take(end - begin - 1).ToList();
    }

    private static bool IsAudit(JsonElement e, string name) => e.GetProperty("probe").GetString() == "audit" && e.GetProperty("event").GetString() == name;
}

public static class CachedPythonCommands
{
    /// <summary>The interpreter as an exact command line (through its own loader when it needs one), without the launcher script.</summary>
    public static List<string> Command(this CachedPython python, params string[] args)
    {
        List<string> command = python.NeedsOwnLoader
            ? [python.LoaderPath, "--library-path", python.LibraryPath, python.BinaryPath]
            : python.LibraryPath is "-" or "" ? [python.BinaryPath] : ["/lib64/ld-linux-x86-64.so.2", "--library-path", python.LibraryPath, python.BinaryPath];
        command.AddRange(args);
        return command;
    }
}

/// <summary>A temporary file path, deleted on dispose.</summary>
public sealed class TempFile : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"pyprobe-test-{Guid.NewGuid():N}");

    public void Dispose() => File.Delete(Path);
}
