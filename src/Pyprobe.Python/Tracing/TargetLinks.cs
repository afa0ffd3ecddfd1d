namespace Pyprobe.Python.Tracing;

/// <summary>
/// How every session puts a loaded program on a target: one link per traced process (pid 0 = every
/// process that maps the file, now or later), by the session's attach mode, and how a probe's sites
/// are grouped so that sites sharing an argument spec share one program.
/// </summary>
public static class TargetLinks
{
    /// <summary>
    /// Attaches <paramref name="program"/> at <paramref name="sites"/> of <paramref name="target"/> and
    /// adds the links to <paramref name="links"/>. Sites must carry their semaphore offsets: another
    /// tracer on the same site with a different one makes the kernel refuse both.
    /// </summary>
    public static void Attach(UprobeAttachMode mode, BpfProgram program, TraceTarget target, IReadOnlyList<UprobeSite> sites, ICollection<IDisposable> links)
    {
        if (target.AllProcesses)
        {
            links.Add(Attach(mode, program, target.AttachPath, sites, 0));
            return;
        }
        foreach (var pid in target.Pids) links.Add(Attach(mode, program, target.AttachPath, sites, pid));
    }

    public static IUprobeLink Attach(UprobeAttachMode mode, BpfProgram program, string path, IReadOnlyList<UprobeSite> sites, int pid, bool returnProbe = false) => mode switch
    {
        UprobeAttachMode.UprobeMulti => UprobeMultiLink.Attach(program, path, sites, pid, returnProbe),
        _ => PerfEventUprobeLink.Attach(program, path, sites, pid, returnProbe),
    };

    /// <summary>
    /// Sites that can share one generated program: the same argument spec. A %rip-relative argument
    /// is a distance from the site itself, so such sites each get their own.
    /// </summary>
    public static IEnumerable<IReadOnlyList<UsdtSite>> SitesBySpec(UsdtProbe probe)
        => probe.Sites
            .GroupBy(site => site.Arguments.Any(a => a is UsdtRipRelativeArgument) ? $"{site.ArgumentText}@{site.Address:x}" : site.ArgumentText)
            .Select(group => (IReadOnlyList<UsdtSite>)group.ToList());
}
