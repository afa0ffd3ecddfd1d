namespace Pyprobe.Bpf.Links;

/// <summary>An attached probe. Disposing detaches it and releases the USDT semaphores it raised.</summary>
public interface IUprobeLink : IClosesAlongside
{
    /// <summary>Number of probe sites this link covers.</summary>
    int SiteCount { get; }
}
