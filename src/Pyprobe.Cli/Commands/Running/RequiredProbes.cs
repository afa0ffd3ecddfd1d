namespace Pyprobe.Cli.Commands.Running;

/// <summary>The targets that have every probe a command needs (gc, imports, audit); the others get a note.</summary>
internal static class RequiredProbes
{
    /// <summary>
    /// Targets with all of <paramref name="probes"/>; a note for each without, and a one-line error naming
    /// <paramref name="what"/> when none has them.
    /// </summary>
    public static IReadOnlyList<TraceTarget> Usable(IReadOnlyList<TraceTarget> targets, IReadOnlyList<string> probes, string what, TextWriter stderr)
    {
        var usable = new List<TraceTarget>();
        foreach (var target in targets)
        {
            var missing = probes.Where(p => target.Binary.FindProbe(PythonProbeCatalog.Provider, p) is null).ToList();
            if (missing.Count == 0) usable.Add(target);
            else stderr.WriteLine($"pyprobe: note: {TargetText.Describe(target)} has no {string.Join(", ", missing)} probe");
        }
        if (usable.Count == 0)
            throw new CliException($"{string.Join(", ", targets.Select(TargetText.Describe))} has no {string.Join("/", probes)} probes, which {what} needs");
        return usable;
    }
}
