namespace Pyprobe.Bpf.RingBuffer;

/// <summary>
/// Where a session's records are read: the ring buffer (<see cref="RingBufferReader"/>) or a queue per CPU merged in
/// time order (<see cref="CpuQueues.CpuQueueReader"/>). Records come framed as the kernel's ring buffer frames them.
/// </summary>
public interface IRecordReader : IDisposable
{
    /// <summary>Bytes the reader can hold in all.</summary>
    ulong Size { get; }

    /// <summary>Bytes written by the kernel and not yet consumed.</summary>
    ulong PendingBytes { get; }

    /// <summary>The fill below which <see cref="WaitForData"/> sleeps until a producer's wakeup or the timeout (0: any record ends the wait).</summary>
    uint BatchBytes { get; set; }

    /// <summary>Blocks until records are worth reading, <see cref="Interrupt"/> is called, or the timeout passes; returns whether any are pending.</summary>
    bool WaitForData(int timeoutMs);

    /// <summary>Wakes a thread blocked in <see cref="WaitForData"/> (from any thread).</summary>
    void Interrupt();

    /// <summary>One pass: hands records to <paramref name="handler"/> one at a time, in order; returns how many.</summary>
    int Drain(RecordHandler handler, int maxRecords = int.MaxValue);

    /// <summary>One pass: hands records in spans of the kernel's framing, in order; returns how many records.</summary>
    int DrainFramed(FramedRecordsHandler handler);

    /// <summary>No program writes any more (every link is closed): whatever is pending can be read out in full.</summary>
    void ProducersStopped();
}
