namespace Pyprobe.Python.Sessions;

/// <summary>
/// A session as the run lifecycle sees it: something attached that can be waited on, woken (by a stop
/// signal), detached early (semaphores drop at once) and disposed. No BPF types: a command drives a run
/// through this and reads results through the session's own typed methods.
/// </summary>
public interface ILiveSession : IDisposable
{
    /// <summary>"uprobe_multi" or "perf-event uprobes", as the Attached line says it.</summary>
    string AttachModeName { get; }

    /// <summary>Blocks until records arrive, <see cref="Wake"/> is called, or <paramref name="milliseconds"/> pass.</summary>
    void Wait(int milliseconds);

    /// <summary>Ends a <see cref="Wait"/> early; safe from a signal handler.</summary>
    void Wake();

    /// <summary>Detaches every probe now, keeping what was collected readable.</summary>
    void Detach();
}

/// <summary>A live session whose records are events delivered one by one (trace, flow, gc, imports, audit).</summary>
public interface IEventSession : ILiveSession
{
    /// <summary>Events the kernel could not deliver because the ring was full.</summary>
    ulong Lost { get; }

    /// <summary>Bytes the kernel has written to the ring that the reader has not yet taken: how far behind it is.</summary>
    ulong RingPendingBytes { get; }

    /// <summary>The ring's data size in bytes.</summary>
    ulong RingBytes { get; }
}

/// <summary>How an attach mode is named to users.</summary>
public static class AttachModeNames
{
    public static string Of(Bpf.Links.UprobeAttachMode mode) => mode == Bpf.Links.UprobeAttachMode.UprobeMulti ? "uprobe_multi" : "perf-event uprobes";
}
