using System.Diagnostics;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.CpuQueues;

/// <summary>
/// Reads the queues of <see cref="CpuQueueLayout"/> through mmap and hands their records out in time order: each
/// CPU's queue is in order already, so it repeatedly takes the CPU whose next record is the earliest and hands out
/// that CPU's records up to the next one of another CPU, as one span straight from the mapping (no copy).
/// A record is handed out only once it is <see cref="HoldBackNs"/> old (a program on another CPU may still be writing
/// an earlier one) or every producer has stopped. Wakeups come through a small ring buffer (the doorbell) that a
/// program writes to when it lifts its queue's fill across the threshold.
/// Each CPU's data is mapped whole, once: the queues are the memory <c>--ring-buffer-mb</c> asked for, and a window
/// moved along them (as this reader did up to 1 MiB at a time, to keep them out of the resident set) paid an
/// munmap with its TLB shootdown per move and, on a guest whose page tables the host shadows, a fault on every page
/// of every lap: throughput bench on such a guest, text to /dev/null 5.4–5.9M → 9.6–10.1M events/s, raw 7–10M → 31–44M.
/// </summary>
public sealed unsafe class CpuQueueReader : IRecordReader
{
    /// <summary>How old a record must be before it is handed out while programs still run.</summary>
    public const long HoldBackNs = 5_000_000;

    /// <summary>
    /// Least time between two passes while records only fall due one by one: a reader that nothing preempts (real-time
    /// priority) otherwise came back for every record as it became due, and handed the output's writer thread a few
    /// lines at a time; on 2 CPUs with 50 traced processes its futex wakeups took 12.8 s of kernel time and made the
    /// programs 3.4× slower.
    /// </summary>
    public const long MinPassIntervalNs = 1_000_000;

    private readonly CpuQueueMappings _mappings;
    private readonly CpuQueueLayout _layout;
    private readonly int _timestampOffset;
    private readonly RingBufferReader _doorbell;
    private readonly Cpu[] _cpus;
    private readonly nuint _dataBytes;
    private bool _stopped, _passEndedEarly, _disposed;
    private ulong _leftPending;
    private long _lastPass;

    private sealed class Cpu
    {
        public byte* Control;
        public ulong Tail;
        public ulong Head;

        /// <summary>The CPU's data and the slack after it, mapped read-only.</summary>
        public byte* Data;

        /// <summary>The head as the programs last moved it.</summary>
        public ulong ReadHead() => Volatile.Read(ref *(ulong*)(Control + CpuQueueLayout.HeadOffset));
    }

    /// <param name="queues">The mmapable array: one value of <paramref name="layout"/>'s size per possible CPU.</param>
    /// <param name="doorbell">The ring buffer the programs wake the reader through.</param>
    /// <param name="timestampOffset">Where every record's u64 CLOCK_MONOTONIC timestamp lies in its payload.</param>
    public CpuQueueReader(BpfMap queues, CpuQueueLayout layout, BpfMap doorbell, int timestampOffset)
        : this(CpuQueueMappings.Map(queues, layout), doorbell, timestampOffset)
    {
    }

    /// <param name="mappings">The queues, mapped already (see <see cref="CpuQueueMappings"/>); the reader owns them from here.</param>
    /// <param name="doorbell">The ring buffer the programs wake the reader through.</param>
    /// <param name="timestampOffset">Where every record's u64 CLOCK_MONOTONIC timestamp lies in its payload.</param>
    public CpuQueueReader(CpuQueueMappings mappings, BpfMap doorbell, int timestampOffset)
    {
        _mappings = mappings;
        try
        {
            if (Stopwatch.Frequency != 1_000_000_000) throw new PlatformNotSupportedException("the monotonic clock does not count nanoseconds");
            _layout = mappings.Layout;
            _timestampOffset = timestampOffset;
            _dataBytes = mappings.DataBytes;
            _cpus = new Cpu[mappings.Cpus];
            for (var i = 0; i < _cpus.Length; i++) _cpus[i] = new Cpu { Control = mappings.Control(i), Data = mappings.Data(i) };
            _doorbell = new RingBufferReader(doorbell);
        }
        catch
        {
            mappings.Dispose();
            throw;
        }
    }

    public ulong Size => (ulong)_layout.Capacity * (ulong)_cpus.Length;

    public ulong PendingBytes
    {
        get
        {
            ulong pending = 0;
            foreach (var cpu in _cpus) pending += cpu.ReadHead() - cpu.Tail;
            return pending;
        }
    }

    public uint BatchBytes { get; set; }

    public bool WaitForData(int timeoutMs)
    {
        if (_passEndedEarly) return true;
        var pending = PendingBytes;
        if (pending > 0 && _stopped) return true;
        // A batch's worth arrived since the last pass: take what is due now.
        if (BatchBytes > 0 && pending >= BatchBytes && pending - _leftPending >= BatchBytes / 2) return true;
        // Otherwise sleep until the earliest record waiting is due (it is held back until then), a producer's wakeup,
        // or the timeout; not sooner: each look at the queues' heads takes their cache lines from the producing CPUs.
        var wait = timeoutMs;
        if (pending > 0 && EarliestRecordTime() is ulong earliest)
        {
            var dueInNs = Math.Max((long)earliest + HoldBackNs, _lastPass + MinPassIntervalNs) - Stopwatch.GetTimestamp();
            if (dueInNs <= 0) return true;
            wait = (int)Math.Min(wait, dueInNs / 1_000_000 + 1);
        }
        _doorbell.WaitForData(wait);
        _doorbell.Drain(static _ => { });
        return PendingBytes > 0;
    }

    /// <summary>The time of the earliest record committed in any queue, or null.</summary>
    private ulong? EarliestRecordTime()
    {
        ulong? earliest = null;
        foreach (var cpu in _cpus)
        {
            cpu.Head = cpu.ReadHead();
            if (Front(cpu) is ulong time && (earliest is null || time < earliest)) earliest = time;
        }
        return earliest;
    }

    public void Interrupt() => _doorbell.Interrupt();

    public void ProducersStopped() => _stopped = true;

    public int Drain(RecordHandler handler, int maxRecords = int.MaxValue) => Pass(handler, null, maxRecords);

    public int DrainFramed(FramedRecordsHandler handler) => Pass(null, handler, int.MaxValue);

    private int Pass(RecordHandler? each, FramedRecordsHandler? framed, int maxRecords)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var watermark = _stopped ? ulong.MaxValue : (ulong)(Stopwatch.GetTimestamp() - HoldBackNs);
        foreach (var cpu in _cpus) cpu.Head = cpu.ReadHead();
        var delivered = 0;
        _passEndedEarly = false;
        while (delivered < maxRecords)
        {
            // The CPU whose next record is the earliest, and the earliest next record of any other CPU.
            Cpu? best = null;
            ulong bestTime = ulong.MaxValue, limit = watermark;
            foreach (var cpu in _cpus)
            {
                if (Front(cpu) is not ulong time) continue;
                if (time < bestTime)
                {
                    if (best is not null) limit = Math.Min(limit, bestTime);
                    best = cpu;
                    bestTime = time;
                }
                else limit = Math.Min(limit, time);
            }
            if (best is null || bestTime > watermark) break;
            var run = Run(best, limit, maxRecords - delivered, each, framed);
            if (run == 0) break;
            delivered += run;
        }
        _leftPending = PendingBytes;
        _lastPass = Stopwatch.GetTimestamp();
        return delivered;
    }

    /// <summary>The time of the CPU's next record, or null when it has none committed.</summary>
    private ulong? Front(Cpu cpu)
    {
        if (cpu.Tail >= cpu.Head) return null;
        var record = Record(cpu, cpu.Tail);
        var header = Volatile.Read(ref *(ulong*)record);
        if (!CpuQueueLayout.IsCommitted(header, cpu.Tail)) return null;
        return *(ulong*)(record + CpuQueueLayout.HeaderBytes + _timestampOffset);
    }

    /// <summary>
    /// Hands out the CPU's records from its tail while they are committed, no later than <paramref name="limit"/>, and
    /// contiguous in memory; moves the tail past them. Returns how many.
    /// </summary>
    private int Run(Cpu cpu, ulong limit, int maxRecords, RecordHandler? each, FramedRecordsHandler? framed)
    {
        var mask = (ulong)_layout.Capacity - 1;
        var offset = cpu.Tail & mask;
        var first = Record(cpu, cpu.Tail);
        var position = cpu.Tail;
        var at = first;
        var records = 0;
        while (position < cpu.Head && records < maxRecords)
        {
            PrefetchAhead(at);
            var header = Volatile.Read(ref *(ulong*)at);
            if (!CpuQueueLayout.IsCommitted(header, position)) break;
            var length = (uint)header;
            var bytes = CpuQueueLayout.FramedBytes(length);
            // A length no program writes (past the slack) means this memory is not a record: stop before reading past the mapping.
            if (offset + bytes > _dataBytes) throw new InvalidDataException($"CPU queue record of {length} bytes at {position} runs past the queue's memory");
            if (records > 0 && *(ulong*)(at + CpuQueueLayout.HeaderBytes + _timestampOffset) > limit) break;
            each?.Invoke(new ReadOnlySpan<byte>(at + CpuQueueLayout.HeaderBytes, (int)length));
            records++;
            position += bytes;
            at += bytes;
            // A record that ran into the slack is followed by one at the start of the data: the span ends here.
            var next = position & mask;
            if (next != offset + bytes) break;
            offset = next;
        }
        if (records == 0) return 0;
        framed?.Invoke(new ReadOnlySpan<byte>(first, (int)(at - first)), records);
        cpu.Tail = position;
        Volatile.Write(ref *(ulong*)(cpu.Control + CpuQueueLayout.TailOffset), position);
        if (records == maxRecords) _passEndedEarly = true;
        return records;
    }

    /// <summary>How far ahead of the record being read its successors' lines are asked for.</summary>
    private const int PrefetchDistance = 2048;

    /// <summary>
    /// Asks for the cache lines a few records ahead: the records were written by programs on other CPUs, and the
    /// hardware prefetcher does not always run ahead of a reader that stops at every header. A prefetch never faults,
    /// so running past the mapping is harmless.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void PrefetchAhead(byte* at)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(at + PrefetchDistance);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(at + PrefetchDistance + 64);
    }

    /// <summary>The address of the record at <paramref name="position"/>; one that starts near the end runs on into the slack.</summary>
    private byte* Record(Cpu cpu, ulong position) => cpu.Data + (position & (_layout.Capacity - 1));

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _doorbell?.Dispose();
        foreach (var cpu in _cpus) cpu.Control = cpu.Data = null;
        _mappings.Dispose();
    }
}
