using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.CpuQueues;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// The queue per CPU (<see cref="CpuQueueOutput"/> in a program, <see cref="CpuQueueReader"/> in user space): an XDP
/// program run by BPF_PROG_TEST_RUN sends record n (its timestamp, n, and n % 23 bytes of a known pattern copied as a
/// variable tail) to the queue of the CPU it runs on. Every record comes back whole and in order across many laps of
/// a small queue, a full queue counts what it could not take, records sent from two CPUs come back merged in time
/// order, and the framed spans are the kernel ring buffer's framing.
/// </summary>
public unsafe class CpuQueueTests : IDisposable
{
    private const int RecordOffset = 16, FixedBytes = 16, MaxTail = 22;
    private static readonly CpuQueueLayout Layout = new(64 << 10, FixedBytes + MaxTail);
    private static readonly int WorkOffset = RecordOffset + 64;

    private readonly BpfMap _queues, _doorbell, _scratch, _counter;
    private readonly BpfProgram _program;
    private readonly CpuQueueReader _reader;

    [DllImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern int SchedSetAffinity(int pid, nint size, ulong* mask);

    public CpuQueueTests()
    {
        KernelRequirement.EnsureRoot();
        _queues = BpfMap.Create(MapSpec.MmapableArray("t_queues", Layout.ValueSize, (uint)PossibleCpus.Count));
        _doorbell = BpfMap.Create(MapSpec.RingBuffer("t_qwake", 4096));
        _scratch = BpfMap.Create(MapSpec.Array("t_qscratch", (uint)(WorkOffset + CpuQueueOutput.WorkBytes), 1));
        _counter = BpfMap.Create(MapSpec.Array("t_qcount", 8, 1));
        var pattern = new byte[WorkOffset + CpuQueueOutput.WorkBytes];
        for (var i = 0; i < MaxTail; i++) pattern[RecordOffset + FixedBytes + i] = (byte)(0xA0 + i);
        _scratch.Update(new byte[4], pattern);
        _program = Load();
        _reader = new CpuQueueReader(_queues, Layout, _doorbell, timestampOffset: 0);
    }

    private BpfProgram Load()
    {
        Register scratch = Register.R8, tail = Register.R9, counter = Register.R7;
        var code = new InstructionBuilder();
        code.LoadMapValue(scratch, _scratch.Fd.Value, 0)
            .LoadMapValue(counter, _counter.Fd.Value, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R6, counter, 0)
            .Mov64(Register.R1, Register.R6).Add64(Register.R1, 1)
            .StoreMem(MemorySize.DoubleWord, counter, 0, Register.R1)
            .StoreMem(MemorySize.DoubleWord, scratch, RecordOffset + 8, Register.R6)
            .Call(HelperFunction.KtimeGetNs)
            .StoreMem(MemorySize.DoubleWord, scratch, RecordOffset, Register.R0)
            .Mov64(tail, Register.R6).Mod64(tail, MaxTail + 1);
        CpuQueueOutput.Emit(code, "queues", "ring", Layout, scratch, RecordOffset, tail, FixedBytes, scratch, 8, wakeupThreshold: 16 << 10, WorkOffset);
        code.Mov64(Register.R0, 2).Exit();
        var program = code.Assemble().BindMaps(new Dictionary<string, int> { ["queues"] = _queues.Fd.Value, ["ring"] = _doorbell.Fd.Value });
        return BpfProgram.Load(new ProgramSpec("t_queue", XdpTestRun.Type, program.Bytecode));
    }

    /// <summary>Runs the program <paramref name="times"/> times on the calling thread's CPU.</summary>
    private void Send(int times) => XdpTestRun.Run(_program.Fd.Value, (uint)times);

    private ulong Lost()
    {
        var value = new byte[WorkOffset + CpuQueueOutput.WorkBytes];
        Assert.True(_scratch.TryLookup(new byte[4], value));
        return BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(8));
    }

    /// <summary>Checks record n: its length, its number, its tail of the pattern; returns its timestamp.</summary>
    private static ulong Check(ReadOnlySpan<byte> record, ulong n)
    {
        var tail = (int)(n % (MaxTail + 1));
        Assert.Equal(FixedBytes + tail, record.Length);
        Assert.Equal(n, BinaryPrimitives.ReadUInt64LittleEndian(record[8..]));
        for (var i = 0; i < tail; i++) Assert.Equal((byte)(0xA0 + i), record[FixedBytes + i]);
        return BinaryPrimitives.ReadUInt64LittleEndian(record);
    }

    private List<byte[]> DrainAll()
    {
        var records = new List<byte[]>();
        while (_reader.Drain(r => records.Add(r.ToArray())) > 0) { }
        return records;
    }

    [Fact]
    public void EveryRecordComesBackWholeAndInOrderOverManyLaps()
    {
        _reader.ProducersStopped();
        var all = new List<byte[]>();
        // 20 rounds of 1000 records of 24-48 bytes in a 64 KiB queue: about 12 laps, records running into the slack.
        for (var round = 0; round < 20; round++)
        {
            Send(1000);
            all.AddRange(DrainAll());
        }
        Assert.Equal(0UL, Lost());
        Assert.Equal(20_000, all.Count);
        ulong previous = 0;
        for (var n = 0; n < all.Count; n++)
        {
            var time = Check(all[n], (ulong)n);
            Assert.True(time >= previous, $"record {n} is older than the one before it");
            previous = time;
        }
        Assert.Equal(0UL, _reader.PendingBytes);
    }

    [Fact]
    public void AFullQueueCountsWhatItCouldNotTake()
    {
        _reader.ProducersStopped();
        // One CPU's queue: a run the kernel lets migrate halfway would fill two (a CI run once fitted 1910, not 1698).
        var pinned = new Thread(() =>
        {
            var mask = 1UL;
            Assert.Equal(0, SchedSetAffinity(0, sizeof(ulong), &mask));
            Send(5000);
        });
        pinned.Start();
        pinned.Join();
        var records = DrainAll();
        var fitted = records.Count;
        // 64 KiB hold every framed record up to the first that does not fit; the rest are counted, none dropped silently.
        ulong bytes = 0;
        var expected = 0;
        for (ulong n = 0; n < 5000; n++)
        {
            var framed = CpuQueueLayout.FramedBytes((uint)(FixedBytes + (int)(n % (MaxTail + 1))));
            if (bytes + framed > Layout.Capacity) break;
            bytes += framed;
            expected++;
        }
        Assert.Equal(expected, fitted);
        Assert.Equal((ulong)(5000 - fitted), Lost());
        for (var n = 0; n < fitted; n++) Check(records[n], (ulong)n);
        // Drained, it takes records again.
        Send(10);
        Assert.Equal(10, DrainAll().Count);
    }

    [Fact]
    public void RecordsFromTwoCpusComeBackInTimeOrder()
    {
        Assert.True(Environment.ProcessorCount >= 2, "this test needs two CPUs");
        var thread = new Thread(() =>
        {
            for (var round = 0; round < 40; round++)
            {
                var mask = 1UL << (round % 2);
                Assert.Equal(0, SchedSetAffinity(0, sizeof(ulong), &mask));
                Send(50);
            }
        });
        thread.Start();
        thread.Join();
        _reader.ProducersStopped();
        var records = DrainAll();
        Assert.Equal(2000, records.Count);
        for (var n = 0; n < records.Count; n++) Check(records[n], (ulong)n);
    }

    [Fact]
    public void ARecordIsHandedOutOnceItIsOlderThanTheHoldBackWithoutProducersStopping()
    {
        Send(3);
        Thread.Sleep(TimeSpan.FromTicks(CpuQueueReader.HoldBackNs / 100 * 2));
        var records = new List<byte[]>();
        _reader.Drain(r => records.Add(r.ToArray()));
        Assert.Equal(3, records.Count);
    }

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [DllImport("libc", EntryPoint = "munmap")]
    private static extern int Munmap(nint address, nuint length);

    /// <summary>
    /// A record reserved but not yet committed is not handed out, even the first of a queue, whose memory is still
    /// zeroed (a header of 0 once passed for a committed empty record at position 0, and decoding it failed pyprobe).
    /// Here the test is the producer: it moves CPU 0's head past a 24-byte record, then writes the record.
    /// </summary>
    [Fact]
    public void AReservedRecordIsHandedOutOnlyOnceItsHeaderIsWritten()
    {
        _reader.ProducersStopped();
        var length = (nuint)(CpuQueueLayout.DataOffset + 4096);
        var cpu0 = Mmap(0, length, 3 /* PROT_READ | PROT_WRITE */, 1 /* MAP_SHARED */, _queues.Fd.Value, 0);
        Assert.NotEqual(-1, (long)cpu0);
        try
        {
            var control = (byte*)cpu0;
            var record = control + CpuQueueLayout.DataOffset;
            *(ulong*)(control + CpuQueueLayout.HeadOffset) = CpuQueueLayout.FramedBytes(FixedBytes);
            Assert.Equal(0, _reader.Drain(_ => { }));
            Assert.Equal((ulong)CpuQueueLayout.FramedBytes(FixedBytes), _reader.PendingBytes);

            *(ulong*)(record + 8) = 1234; // the timestamp
            *(ulong*)(record + 16) = 0;   // record 0: no tail
            *(ulong*)record = (ulong)~0u << 32 | FixedBytes;
            var records = DrainAll();
            Assert.Single(records);
            Check(records[0], 0);
        }
        finally
        {
            Munmap(cpu0, length);
        }
    }

    [Fact]
    public void FramedSpansCarryTheRingBuffersFraming()
    {
        _reader.ProducersStopped();
        Send(500);
        var seen = 0UL;
        while (_reader.DrainFramed((span, count) =>
        {
            var at = 0;
            for (var i = 0; i < count; i++)
            {
                var length = BinaryPrimitives.ReadUInt32LittleEndian(span[at..]);
                Assert.Equal(0u, length & RingBufferReader.FramedDiscardBit);
                Check(span.Slice(at + RingBufferReader.FramedHeaderSize, (int)length), seen++);
                at += (RingBufferReader.FramedHeaderSize + (int)length + 7) & ~7;
            }
            Assert.Equal(span.Length, at);
        }) > 0) { }
        Assert.Equal(500UL, seen);
    }

    public void Dispose()
    {
        _reader.Dispose();
        _program.Dispose();
        _counter.Dispose();
        _scratch.Dispose();
        _doorbell.Dispose();
        _queues.Dispose();
    }
}
