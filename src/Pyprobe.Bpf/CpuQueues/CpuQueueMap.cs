namespace Pyprobe.Bpf.CpuQueues;

/// <summary>A session's queues: the mmapable array's fd and the layout its programs are generated for.</summary>
public sealed record CpuQueueMap(int Fd, CpuQueueLayout Layout);
