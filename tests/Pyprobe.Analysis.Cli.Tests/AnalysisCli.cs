using System.Text.Json;
using Pyprobe.Cli.Tests;

namespace Pyprobe.Analysis.Cli.Tests;

/// <summary>Runs pyprobe analysis commands on a cached interpreter and parses their JSON.</summary>
internal static class AnalysisCli
{
    public const string Fib = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nfib(18)\n";

    /// <summary>pyprobe ARGS -o FILE -- python -c SCRIPT; returns the result and the file's text.</summary>
    public static (CliResult Result, string Output) Run(string version, string script, params string[] args)
    {
        var python = CachedPythons.Get(version);
        using var file = new TempFile();
        var result = PyprobeBinary.Run([.. args, "-o", file.Path, "--", .. python.Command("-c", script)], timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        return (result, File.Exists(file.Path) ? File.ReadAllText(file.Path) : "");
    }

    /// <summary>The rows of one calls --format json report.</summary>
    public static List<JsonElement> Rows(string json)
    {
        var lines = json.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one JSON array, got {lines.Length} lines:\n{json}");
        return [.. JsonDocument.Parse(lines[0]).RootElement.Clone().EnumerateArray()];
    }

    public static JsonElement Row(IEnumerable<JsonElement> rows, string funcname)
    {
        var matching = rows.Where(r => r.GetProperty("funcname").GetString() == funcname).ToList();
        Assert.True(matching.Count == 1, $"expected one row for {funcname}, got {matching.Count}");
        return matching[0];
    }

    public static string[] Keys(JsonElement row) => [.. row.EnumerateObject().Select(p => p.Name)];

    public static List<JsonElement> JsonLines(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
}
