namespace Pyprobe.Usdt;

/// <summary>
/// One NT_STAPSDT note exactly as stored in the file (addresses not yet prelink-adjusted).
/// <see cref="UsdtBinary"/> turns these into <see cref="UsdtProbe"/>/<see cref="UsdtSite"/>.
/// </summary>
public sealed record StapsdtNote(ulong Location, ulong Base, ulong Semaphore, string Provider, string Name, string Arguments)
{
    public string ProbeId => $"{Provider}:{Name}";
}
