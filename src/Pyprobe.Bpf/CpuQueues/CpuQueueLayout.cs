namespace Pyprobe.Bpf.CpuQueues;

/// <summary>
/// One CPU's queue: a value of an mmapable array map (index = CPU number) that only the programs running on that CPU
/// write and one reader in user space drains. A page of counters comes first (head, written by the programs; tail,
/// written by the reader, on a cache line of its own), then the data: records framed as the kernel's ring buffer
/// frames them (a u32 length, a u32 that here holds the low half of the record's position inverted, the payload,
/// padding to 8 bytes), at positions that only grow. Inverted, because a queue's memory starts zeroed: a header of 0
/// would otherwise pass for a committed record at position 0 while its program is still writing it. A record starts at its position modulo <see cref="Capacity"/> and runs on
/// into the slack after the data when it starts near the end, so every record is contiguous; the reader sees it
/// once its header carries its own position. Space is counted in positions, so the slack never holds live data
/// that another record's bytes could reach.
/// </summary>
/// <remarks>
/// Why not the ring buffer: each record there takes the ring's spinlock with interrupts off, and every CPU's
/// records meet on the same producer counter. A program reserves here with one compare-exchange on a counter only
/// its CPU touches (a second writer on the same CPU, after a preemption, makes it fail: that record is counted as
/// lost), and the reader puts the CPUs' records back in time order.
/// </remarks>
public sealed record CpuQueueLayout(uint Capacity, uint MaxPayloadBytes)
{
    public const int HeadOffset = 0;
    public const int TailOffset = 64;

    /// <summary>Where the data starts: the counters have a page of their own, the only page the reader maps writable.</summary>
    public const int DataOffset = 4096;

    /// <summary>The frame around a payload: a u32 length and the low 32 bits of the record's position, inverted.</summary>
    public const int HeaderBytes = 8;

    /// <summary>Whether <paramref name="header"/> is that of a committed record at <paramref name="position"/>.</summary>
    public static bool IsCommitted(ulong header, ulong position) => (uint)(header >> 32) == ~(uint)position && (uint)header != 0;

    private const uint PageBytes = 4096;

    /// <summary>The bytes a record of <paramref name="payload"/> bytes takes, header and padding included.</summary>
    public static uint FramedBytes(uint payload) => (HeaderBytes + payload + 7) & ~7u;

    /// <summary>Room after the data for the longest record that starts near its end.</summary>
    public uint SlackBytes => (FramedBytes(MaxPayloadBytes) + PageBytes - 1) & ~(PageBytes - 1);

    /// <summary>Bytes of one CPU's value: counters, data, slack (a whole number of pages, so every CPU's value starts on a page).</summary>
    public uint ValueSize => DataOffset + Capacity + SlackBytes;

    /// <summary>
    /// A queue per CPU sharing <paramref name="totalBytes"/> (rounded down to a power of two per CPU, at least 64 KiB,
    /// at most 8 MiB: larger values are refused by some kernels' array maps).
    /// </summary>
    public static CpuQueueLayout Share(uint totalBytes, int cpus, uint maxPayloadBytes)
    {
        var each = Math.Clamp(totalBytes / (uint)Math.Max(cpus, 1), 64u << 10, 8u << 20);
        return new CpuQueueLayout(1u << (31 - System.Numerics.BitOperations.LeadingZeroCount(each)), maxPayloadBytes);
    }
}
