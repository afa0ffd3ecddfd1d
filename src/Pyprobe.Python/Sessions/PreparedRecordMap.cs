using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Launch;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Python.Sessions;

/// <summary>
/// The map a session's records go to, created on a thread of its own (not waited for: <see cref="UnwaitedThread"/>)
/// while the command resolves its target: the kernel zeroes every page of a new ring or queue array (16 MiB: 2.5–3.5 ms;
/// the default is 8), time that otherwise lies between launch and probes live. With <c>queues</c> given, the CPU queues' array is made (where this kernel has them), else the ring.
/// The session takes it in <see cref="SessionCore.OpenRing"/> or <see cref="SessionCore.OpenCpuQueues"/>; one never taken
/// is closed on dispose. A failed creation leaves nothing to take, and the session then creates the map itself and
/// reports the error.
/// </summary>
public sealed class PreparedRecordMap : IDisposable
{
    private readonly ManualResetEventSlim _made = new();
    private BpfMap? _map;
    private readonly MapSpec _spec;
    private bool _taken;

    public PreparedRecordMap(string name, uint bytes, Func<MapSpec?>? queues = null)
    {
        _spec = MapSpec.RingBuffer(name, bytes);
        UnwaitedThread.Start(() =>
        {
            try
            {
                _map = Create(queues);
            }
            finally
            {
                _made.Set();
            }
        }, "pyprobe map");
    }

    private BpfMap? Create(Func<MapSpec?>? queues)
    {
        try
        {
            MemlockLimit.RemoveIfNeeded();
            if (queues?.Invoke() is { } spec)
            {
                try
                {
                    return BpfMap.Create(spec);
                }
                catch (SyscallException)
                {
                    // No mmapable arrays here: the session will ask for the ring.
                }
            }
            return BpfMap.Create(_spec);
        }
        catch (Exception e) when (e is SyscallException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The map, when it was made to <paramref name="spec"/>; the caller owns it from here.</summary>
    internal BpfMap? Take(MapSpec spec)
    {
        if (_taken) return null;
        _made.Wait();
        var made = _map;
        if (made is null || made.Spec != spec) return null;
        _taken = true;
        return made;
    }

    public void Dispose()
    {
        if (_taken) return;
        _taken = true;
        _made.Wait();
        _map?.Dispose();
    }
}
