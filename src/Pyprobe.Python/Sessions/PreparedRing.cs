using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Python.Sessions;

/// <summary>
/// A ring buffer created on a thread of its own while the command resolves its target: the kernel zeroes every page of
/// a new ring (16 MiB: 2.5–3.5 ms), time that otherwise lies between launch and probes live. The session takes it in
/// <see cref="SessionCore.OpenRing"/>; one never taken is closed on dispose. A failed creation leaves nothing to take,
/// and the session then creates the ring itself and reports the error.
/// </summary>
public sealed class PreparedRing : IDisposable
{
    private readonly Task<BpfMap?> _creating;
    private bool _taken;

    public PreparedRing(string name, uint bytes)
    {
        Name = name;
        Bytes = bytes;
        _creating = Task.Factory.StartNew(() => Create(name, bytes), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public string Name { get; }
    public uint Bytes { get; }

    private static BpfMap? Create(string name, uint bytes)
    {
        try
        {
            MemlockLimit.RemoveIfNeeded();
            return BpfMap.Create(MapSpec.RingBuffer(name, bytes));
        }
        catch (Exception e) when (e is SyscallException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The ring, when it is the one asked for and was created; the caller owns it from here.</summary>
    internal BpfMap? Take(string name, uint bytes)
    {
        if (_taken || name != Name || bytes != Bytes) return null;
        _taken = true;
        return _creating.Result;
    }

    public void Dispose()
    {
        if (_taken) return;
        _taken = true;
        _creating.Result?.Dispose();
    }
}
