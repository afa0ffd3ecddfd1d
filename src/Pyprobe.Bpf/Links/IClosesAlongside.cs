namespace Pyprobe.Bpf.Links;

/// <summary>
/// A link whose closing depends on no other link's state, so <see cref="LinkCloser"/> may close it at the same time as
/// its neighbours: a uprobe link, or something that owns one and restores only what it set itself.
/// </summary>
public interface IClosesAlongside : IDisposable;
