using System.IO.Enumeration;

namespace Pyprobe.Cli.Commands;

/// <summary>Expands the PROBE words of a command (names or shell-style globs such as gc__* or *).</summary>
internal static class ProbeSelector
{
    public static IReadOnlyList<PythonProbe> Select(IReadOnlyList<string> words, string defaultProbe)
    {
        if (words.Count == 0) return [PythonProbeCatalog.Find(defaultProbe)!];
        var selected = new List<PythonProbe>();
        foreach (var word in words)
        {
            var name = word.StartsWith("python:", StringComparison.Ordinal) ? word["python:".Length..] : word;
            var matches = PythonProbeCatalog.All.Where(p => FileSystemName.MatchesSimpleExpression(name, p.Name, ignoreCase: false)).ToList();
            if (matches.Count == 0)
                throw new UsageException($"unknown probe '{word}'; the probes are {string.Join(", ", PythonProbeCatalog.All.Select(p => p.Name))}");
            foreach (var probe in matches)
                if (!selected.Contains(probe)) selected.Add(probe);
        }
        return selected;
    }
}
