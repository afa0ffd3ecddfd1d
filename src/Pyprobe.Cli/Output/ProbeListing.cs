using Pyprobe.Cli.Targets;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Versions;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Cli.Output;

/// <summary>Everything `pyprobe list` shows about one file, independent of the output format.</summary>
internal sealed record ProbeListing(ProbeFile File, IReadOnlyList<ListedProbe> Probes)
{
    public string Path => File.DisplayPath;
    public DetectedPythonVersion? Version => File.Version;
    public ElfFileKind Kind => File.Binary.Kind;

    /// <summary>Where function__entry/function__return events of this interpreter come from, and their cost; null when the version is unknown.</summary>
    public string? FunctionEvents => FunctionEventsOf(new TraceTarget(File.DisplayPath, File.DisplayPath, File.Binary, [], Version?.Version));

    /// <summary>`list -v`'s line on function events for any interpreter, probes or not.</summary>
    public static string? FunctionEventsOf(TraceTarget target)
    {
        if (target.Version is not { } version || CPythonFacts.For(version) is not { } facts) return null;
        var source = FunctionEventSource.ForProcessesOf(target);
        var text = source.Described;
        if (source.Kind == FunctionEventSourceKind.Usdt && facts.FunctionEntryNeedsLineSemaphore)
            text += "; function__entry fires only with the line gate open, which slows call-heavy code about 10x";
        else if (source.Kind == FunctionEventSourceKind.EvalFrameWithHook)
            text += "; with --no-write none (calls are inlined)";
        return text;
    }

    public static ProbeListing From(ProbeFile file)
    {
        var probes = file.Binary.Probes
            .OrderBy(p => p.Provider, StringComparer.Ordinal)
            .ThenBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => ListedProbe.From(p, file.Version?.Version))
            .ToList();
        return new ProbeListing(file, probes);
    }
}

/// <summary>An argument as shown to users: its name and C type.</summary>
internal sealed record ListedArgument(string Name, string CType);

/// <summary>
/// A probe with the catalog's argument names and types (generic argN/intN_t for probes the
/// catalog does not know) and, for CPython probes of a known version, whether it fires.
/// </summary>
/// <param name="Fires">"yes", "partly", "no", or null when not a CPython probe or the version is unknown.</param>
/// <param name="Reason">Why (may be empty), or why there is no verdict.</param>
internal sealed record ListedProbe(UsdtProbe Probe, IReadOnlyList<ListedArgument> Arguments, string? Fires, string Reason)
{
    public string Provider => Probe.Provider;
    public string Name => Probe.Name;
    public IReadOnlyList<UsdtSite> Sites => Probe.Sites;

    /// <summary>The semaphore file offset shared by all sites, 0 for none, null when the sites differ.</summary>
    public ulong? CommonSemaphoreOffset =>
        Sites.Select(s => s.SemaphoreFileOffset).Distinct().ToList() is [var only] ? only : null;

    /// <summary>"yes", "partly: why", "no: why", or "unknown: why".</summary>
    public string Verdict => Reason.Length == 0 ? Fires ?? "unknown" : $"{Fires ?? "unknown"}: {Reason}";

    public static ListedProbe From(UsdtProbe probe, PythonVersion? version)
    {
        var site = probe.Sites.Count > 0 ? probe.Sites[0].Arguments : [];
        var known = probe.Provider == PythonProbeCatalog.Provider ? PythonProbeCatalog.Find(probe.Name) : null;
        int count = Math.Max(site.Count, known?.Arguments.Count ?? 0);
        var arguments = new List<ListedArgument>(count);
        for (int i = 0; i < count; i++)
        {
            if (known is not null && i < known.Arguments.Count)
                arguments.Add(new ListedArgument(known.Arguments[i].Name, known.Arguments[i].CType));
            else
                arguments.Add(new ListedArgument($"arg{i}", GenericType(site[i])));
        }

        if (probe.Provider != PythonProbeCatalog.Provider)
            return new ListedProbe(probe, arguments, null, "not a CPython probe");
        if (version is null)
            return new ListedProbe(probe, arguments, null, "the CPython version could not be detected");
        var support = PythonProbeCatalog.Support(probe.Name, version.Major, version.Minor);
        string fires = support.Firing switch
        {
            ProbeFiring.Yes => "yes",
            ProbeFiring.Partly => "partly",
            _ => "no",
        };
        return new ListedProbe(probe, arguments, fires, support.Reason);
    }

    private static string GenericType(UsdtArgument argument) =>
        $"{(argument.Signed ? "" : "u")}int{argument.Size * 8}_t";
}
