using System.Text.Json;

namespace Pyprobe.Faults.Tests.Support;

/// <summary>The JSON lines of `pyprobe trace --format json`, parsed (every line must be valid JSON).</summary>
public sealed class TraceOutput
{
    public TraceOutput(string stdout)
    {
        Events = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.Clone())
            .ToList();
    }

    public IReadOnlyList<JsonElement> Events { get; }

    public IEnumerable<JsonElement> OfProbe(string probe) => Events.Where(e => e.GetProperty("probe").GetString() == probe);

    public int Count(string probe, string field, string value) => OfProbe(probe).Count(e => e.GetProperty(field).GetString() == value);
}

/// <summary>A temporary file path, deleted on dispose.</summary>
public sealed class TempFile : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"pyprobe-faults-{Guid.NewGuid():N}");

    public void Dispose() => File.Delete(Path);
}
