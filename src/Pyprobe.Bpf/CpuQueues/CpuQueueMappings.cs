using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.CpuQueues;

/// <summary>
/// Every CPU's queue of a queues array (<see cref="CpuQueueLayout"/>) mapped into this process: its counters page
/// read-write, its data and the slack after it read-only. Mapping is most of what opening a reader costs: the kernel
/// inserts every page of the array when it is mapped (an mmapable array is mapped whole, <c>remap_vmalloc_range</c>),
/// ~1.8 ms for 8 MiB here; made apart from the reader, it can be done on the thread that makes the array, ahead of need.
/// </summary>
public sealed unsafe class CpuQueueMappings : IDisposable
{
    private readonly nint[] _control, _data;
    private readonly nuint _pageSize = (nuint)LibC.GetPageSize();
    private bool _disposed;

    public CpuQueueLayout Layout { get; }

    /// <summary>The bytes mapped of each CPU's data: the queue and the slack after it.</summary>
    public nuint DataBytes => Layout.Capacity + Layout.SlackBytes;

    public int Cpus => _data.Length;

    private CpuQueueMappings(CpuQueueLayout layout, int cpus) => (Layout, _control, _data) = (layout, new nint[cpus], new nint[cpus]);

    /// <summary>Maps every CPU's queue of <paramref name="queues"/>, an mmapable array of <paramref name="layout"/>'s values.</summary>
    /// <exception cref="ArgumentException">The map is not such an array.</exception>
    /// <exception cref="SyscallException">A mapping failed (nothing stays mapped).</exception>
    public static CpuQueueMappings Map(BpfMap queues, CpuQueueLayout layout)
    {
        if (queues.Spec.Type != MapType.Array || (queues.Spec.Flags & MapSpec.Mmapable) == 0 || queues.Spec.ValueSize != layout.ValueSize)
            throw new ArgumentException($"map '{queues.Spec.Name}' is not an mmapable array of this layout");
        var mappings = new CpuQueueMappings(layout, (int)queues.Spec.MaxEntries);
        try
        {
            for (var i = 0; i < mappings.Cpus; i++)
            {
                var offset = (long)i * layout.ValueSize;
                mappings._control[i] = (nint)queues.MapShared(mappings._pageSize, LibC.ProtRead | LibC.ProtWrite, offset, "counters");
                mappings._data[i] = (nint)queues.MapShared(mappings.DataBytes, LibC.ProtRead, offset + CpuQueueLayout.DataOffset, "data");
            }
            return mappings;
        }
        catch
        {
            mappings.Dispose();
            throw;
        }
    }

    /// <summary>CPU <paramref name="cpu"/>'s counters (head and tail), writable.</summary>
    public byte* Control(int cpu) => (byte*)_control[cpu];

    /// <summary>CPU <paramref name="cpu"/>'s data, read-only.</summary>
    public byte* Data(int cpu) => (byte*)_data[cpu];

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (var i = 0; i < _data.Length; i++)
        {
            if (_data[i] != 0) LibC.Munmap((void*)_data[i], DataBytes);
            if (_control[i] != 0) LibC.Munmap((void*)_control[i], _pageSize);
            _data[i] = _control[i] = 0;
        }
    }
}
