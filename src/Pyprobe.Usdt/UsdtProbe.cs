namespace Pyprobe.Usdt;

/// <summary>
/// A USDT probe (provider:name) with all its sites. One probe can be emitted from several places
/// (inlining, several call sites: up to 5 "audit" sites in CPython 3.14); a tracer must attach to all.
/// </summary>
public sealed record UsdtProbe(string Provider, string Name, IReadOnlyList<UsdtSite> Sites)
{
    /// <summary>"provider:name", the form used in messages and on the command line.</summary>
    public string Id => $"{Provider}:{Name}";
}

/// <summary>
/// One probe site. Addresses are link-time virtual addresses after the .stapsdt.base (prelink)
/// adjustment; file offsets are what the kernel wants for uprobe attach (offset) and for
/// ref_ctr_offset (semaphore), computed through the PT_LOAD table.
/// </summary>
/// <param name="Address">Virtual address of the probe instruction (adjusted).</param>
/// <param name="FileOffset">File offset of the probe instruction (executable PT_LOAD).</param>
/// <param name="SemaphoreAddress">Virtual address of the 16-bit semaphore (adjusted), 0 = none.</param>
/// <param name="SemaphoreFileOffset">File offset of the semaphore (non-executable PT_LOAD), 0 = none.</param>
/// <param name="ArgumentText">The note's raw argument string.</param>
/// <param name="Arguments">Parsed arguments, in order.</param>
public sealed record UsdtSite(
    ulong Address,
    ulong FileOffset,
    ulong SemaphoreAddress,
    ulong SemaphoreFileOffset,
    string ArgumentText,
    IReadOnlyList<UsdtArgument> Arguments)
{
    public bool HasSemaphore => SemaphoreFileOffset != 0;
}
