using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.RingBuffer;

/// <summary>Receives one record; the span points into the ring and is only valid during the call.</summary>
public delegate void RecordHandler(ReadOnlySpan<byte> record);

/// <summary>
/// Receives committed records as the kernel frames them, back to back (see <see cref="RingBufferReader.DrainFramed"/>);
/// the span points into the ring and is only valid during the call.
/// </summary>
public delegate void FramedRecordsHandler(ReadOnlySpan<byte> framed, int records);

/// <summary>
/// Reads a BPF_MAP_TYPE_RINGBUF map through mmap, without copying.
/// Layout (kernel/bpf/ringbuf.c): page 0 holds consumer_pos (the only writable page), page 1 holds
/// producer_pos, then the data pages are mapped twice back to back, so a record that wraps around the
/// end is still one contiguous span.
/// Only a window of the data (<see cref="WindowBytes"/>) is mapped at a time, moved along as records are
/// consumed: the kernel maps every page of a ring mapping at mmap time, so mapping all of a 16 MB ring
/// (twice) put 32 MB into the reader's resident set.
/// </summary>
public sealed unsafe class RingBufferReader : IRecordReader
{
    private const uint BusyBit = 1u << 31;
    private const uint DiscardBit = 1u << 30;
    private const int HeaderSize = 8;

    private readonly BpfMap _map;
    private readonly nuint _pageSize;
    private readonly ulong _mask;
    private readonly byte* _consumerPage;
    private readonly byte* _producerPage;
    private byte* _window;
    private ulong _windowStart;
    private nuint _windowLength;
    private readonly WakeupPoller _poller;
    private bool _disposed;

    public RingBufferReader(BpfMap map)
    {
        if (map.Spec.Type != MapType.RingBuffer) throw new ArgumentException($"map '{map.Spec.Name}' is not a ring buffer");
        var size = map.Spec.MaxEntries;
        if (size == 0 || (size & (size - 1)) != 0) throw new ArgumentException("ring buffer size must be a power of two");

        _map = map;
        _pageSize = (nuint)LibC.GetPageSize();
        _mask = size - 1;
        _consumerPage = (byte*)Map(_pageSize, LibC.ProtRead | LibC.ProtWrite, 0, "consumer page");
        try
        {
            _producerPage = (byte*)Map(_pageSize, LibC.ProtRead, (long)_pageSize, "producer page");
            MapWindow(0, Math.Min(WindowBytes, size));
        }
        catch
        {
            if (_producerPage is not null) LibC.Munmap(_producerPage, _pageSize);
            LibC.Munmap(_consumerPage, _pageSize);
            throw;
        }
        _poller = new WakeupPoller(map.Fd);
        Size = size;
    }

    /// <summary>Bytes of the data area mapped at a time (or the whole ring when smaller); a longer record gets a longer window.</summary>
    public const uint WindowBytes = 1 << 20;

    /// <summary>Ring size in bytes.</summary>
    public uint Size { get; }

    ulong IRecordReader.Size => Size;

    /// <summary>The ring's records are in order as they are committed: nothing waits for the producers to stop.</summary>
    public void ProducersStopped() { }

    /// <summary>Bytes written by the kernel and not yet consumed.</summary>
    public ulong PendingBytes => Volatile.Read(ref *(ulong*)_producerPage) - Volatile.Read(ref *(ulong*)_consumerPage);

    /// <summary>
    /// Blocks until the ring has data (at least <see cref="BatchBytes"/>, or a producer's wakeup), <see
    /// cref="Interrupt"/> is called, or the timeout passes. Returns whether records are pending.
    /// </summary>
    public bool WaitForData(int timeoutMs)
    {
        var pending = PendingBytes;
        if (pending > 0 && (pending >= BatchBytes || _passEndedEarly)) return true;
        _poller.Wait(timeoutMs);
        return PendingBytes > 0;
    }

    /// <summary>
    /// With producers that wake the reader only once this much is pending (a fill threshold, see RingOutput), <see
    /// cref="WaitForData"/> sleeps while less is pending, until that wakeup or the timeout: a reader that keeps up
    /// then takes records in batches instead of spinning on every few (which cost it 3-4 times more CPU per record).
    /// 0 (the default, for producers with the kernel's own wakeups): it returns as soon as anything is pending. Either
    /// way it returns at once while the last drain left records it had seen (a window's or a count's worth per pass).
    /// </summary>
    public uint BatchBytes { get; set; }

    private bool _passEndedEarly;

    /// <summary>Wakes a thread blocked in <see cref="WaitForData"/> (from any thread, e.g. a signal handler).</summary>
    public void Interrupt() => _poller.Interrupt();

    /// <summary>
    /// Hands the committed records to <paramref name="handler"/> in order, releasing their space every
    /// 64 records and at the end (also when the handler throws: that record is not handed out again). One pass: the producer position is read once, so a
    /// producer faster than the handler cannot keep the caller here forever (it must get to check
    /// its stop conditions); call again to continue. Stops early at a record the kernel is still
    /// writing. Returns the number of records delivered.
    /// </summary>
    public int Drain(RecordHandler handler, int maxRecords = int.MaxValue)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var consumer = Volatile.Read(ref *(ulong*)_consumerPage);
        var producer = Volatile.Read(ref *(ulong*)_producerPage);
        var delivered = 0;
        try
        {
            while (consumer < producer && delivered < maxRecords)
            {
                var offset = consumer & _mask;
                var header = Data(offset, HeaderSize);
                var length = Volatile.Read(ref *(uint*)header);
                if ((length & BusyBit) != 0) break;
                var payload = (int)(length & ~(BusyBit | DiscardBit));
                consumer += (ulong)((HeaderSize + payload + 7) & ~7);
                if ((length & DiscardBit) == 0)
                {
                    header = Data(offset, HeaderSize + (ulong)payload);
                    handler(new ReadOnlySpan<byte>(header + HeaderSize, payload));
                    delivered++;
                }
                // The kernel reads consumer_pos on every reserve: publishing it every 64 records, not after each, keeps
                // that cache line from bouncing between the producing and the consuming CPU (64 records are a few KB).
                if ((delivered & 63) == 0) Volatile.Write(ref *(ulong*)_consumerPage, consumer);
            }
        }
        finally
        {
            Volatile.Write(ref *(ulong*)_consumerPage, consumer);
            _passEndedEarly = consumer < producer;
        }
        return delivered;
    }

    /// <summary>
    /// The address of <paramref name="length"/> bytes at <paramref name="offset"/> of the data area (offset &lt; Size),
    /// moving the window when they lie outside it. Data offsets run up to twice the size (the pages are mapped
    /// twice), so a window starting anywhere in the ring may reach past its end, and a record that wraps is
    /// contiguous in it.
    /// </summary>
    private byte* Data(ulong offset, ulong length)
    {
        var end = _windowStart + _windowLength;
        if (offset >= _windowStart && offset + length <= end) return _window + (offset - _windowStart);
        if (offset + Size >= _windowStart && offset + Size + length <= end) return _window + (offset + Size - _windowStart);
        var start = offset & ~((ulong)_pageSize - 1);
        var needed = (offset - start + length + _pageSize - 1) & ~((ulong)_pageSize - 1);
        LibC.Munmap(_window, _windowLength);
        _window = null;
        MapWindow(start, Math.Max(Math.Min(WindowBytes, Size), needed));
        return _window + (offset - start);
    }

    private void MapWindow(ulong start, ulong length)
    {
        _window = (byte*)Map((nuint)length, LibC.ProtRead, (long)(2 * _pageSize + start), "data window");
        _windowStart = start;
        _windowLength = (nuint)length;
    }

    /// <summary>
    /// Hands every committed record waiting in the ring to <paramref name="handler"/> in one span, in the kernel's own
    /// framing: per record a u32 length (bit 30: discarded, to be skipped), a u32 the kernel uses internally, the
    /// payload, and padding to 8 bytes. The data pages are mapped twice, so the span is contiguous even where it wraps.
    /// One pass over at most a window's worth (call again while it returns records), like <see cref="Drain"/>; stops at a record the kernel is still writing. Returns the number of records
    /// that are not discarded.
    /// </summary>
    public int DrainFramed(FramedRecordsHandler handler)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var start = Volatile.Read(ref *(ulong*)_consumerPage);
        var producer = Volatile.Read(ref *(ulong*)_producerPage);
        _passEndedEarly = false;
        if (start >= producer) return 0;
        // At most what the mapped window holds from the first record on (a record longer than the window gets a
        // window of its own): mapping more would put the ring back into the resident set. The caller comes back for the rest.
        var first = Data(start & _mask, HeaderSize);
        var mapped = (ulong)(_window + _windowLength - first);
        var consumer = start;
        var records = 0;
        while (consumer < producer)
        {
            var at = consumer - start;
            if (at + HeaderSize > mapped) break;
            var length = Volatile.Read(ref *(uint*)(first + at));
            if ((length & BusyBit) != 0) break;
            var next = at + (ulong)((HeaderSize + (int)(length & ~(BusyBit | DiscardBit)) + 7) & ~7);
            if (next > mapped)
            {
                if (at > 0) break;
                first = Data(start & _mask, next);
                mapped = (ulong)(_window + _windowLength - first);
            }
            consumer = start + next;
            if ((length & DiscardBit) == 0) records++;
        }
        _passEndedEarly = consumer < producer;
        if (consumer == start) return 0;
        handler(new ReadOnlySpan<byte>(first, (int)(consumer - start)), records);
        Volatile.Write(ref *(ulong*)_consumerPage, consumer);
        return records;
    }

    /// <summary>Size of a framed record's header: the u32 length with its busy and discard bits, and a u32 for the kernel.</summary>
    public const int FramedHeaderSize = HeaderSize;

    /// <summary>Set in a framed record's length when the producer discarded it.</summary>
    public const uint FramedDiscardBit = DiscardBit;

    private void* Map(nuint length, int protection, long offset, string what) => _map.MapShared(length, protection, offset, what);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _poller.Dispose();
        if (_window is not null) LibC.Munmap(_window, _windowLength);
        LibC.Munmap(_producerPage, _pageSize);
        LibC.Munmap(_consumerPage, _pageSize);
    }
}
