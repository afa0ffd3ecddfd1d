using Pyprobe.Bpf.CpuQueues;
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
/// is closed on dispose. The queues are mapped into pyprobe on the same thread (<see cref="CpuQueueMappings"/>: the
/// kernel inserts every page at mmap, as costly again as making them). A failed creation leaves nothing to take, and
/// the session then creates the map itself and reports the error.
/// </summary>
public sealed class PreparedRecordMap : IDisposable
{
    private readonly ManualResetEventSlim _made = new();
    private BpfMap? _map;
    private CpuQueueMappings? _mappings;
    private readonly MapSpec _spec;
    private bool _taken;

    /// <param name="queues">The CPU queues' array and layout, or null where this kernel has none (then the ring is made).</param>
    public PreparedRecordMap(string name, uint bytes, Func<(MapSpec Spec, CpuQueueLayout Layout)?>? queues = null)
    {
        _spec = MapSpec.RingBuffer(name, bytes);
        UnwaitedThread.Start(() =>
        {
            try
            {
                (_map, _mappings) = Create(queues);
            }
            finally
            {
                _made.Set();
            }
        }, "pyprobe map");
    }

    private (BpfMap?, CpuQueueMappings?) Create(Func<(MapSpec Spec, CpuQueueLayout Layout)?>? queues)
    {
        try
        {
            MemlockLimit.RemoveIfNeeded();
            if (queues?.Invoke() is var (spec, layout))
            {
                BpfMap? made = null;
                try
                {
                    made = BpfMap.Create(spec);
                    return (made, CpuQueueMappings.Map(made, layout));
                }
                catch (SyscallException)
                {
                    // No mmapable arrays here (the session will ask for the ring), or no room to map them (the session
                    // maps them and reports it).
                    if (made is not null) return (made, null);
                }
            }
            return (BpfMap.Create(_spec), null);
        }
        catch (Exception e) when (e is SyscallException or ArgumentException)
        {
            return (null, null);
        }
    }

    /// <summary>The map, when it was made to <paramref name="spec"/>, and its queues' mappings if they were made; the caller owns both from here.</summary>
    internal (BpfMap Map, CpuQueueMappings? Mappings)? Take(MapSpec spec)
    {
        if (_taken) return null;
        _made.Wait();
        var made = _map;
        if (made is null || made.Spec != spec) return null;
        _taken = true;
        return (made, _mappings);
    }

    public void Dispose()
    {
        if (_taken) return;
        _taken = true;
        _made.Wait();
        _mappings?.Dispose();
        _map?.Dispose();
    }
}
