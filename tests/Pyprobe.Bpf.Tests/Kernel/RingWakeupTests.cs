using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// RingOutput's wakeup policy, seen from a reader blocked in epoll: a record wakes it only when the ring holds the
/// threshold and, with a check counter, only on every Nth run. The kernel runs the program (an XDP program through
/// BPF_PROG_TEST_RUN, one record per run); the reader drains after each wakeup, so the next one must come from a record.
/// </summary>
public unsafe class RingWakeupTests
{
    private const int HitsOffset = 0, LostOffset = 8, RecordOffset = 16, RecordBytes = 16;

    [Theory]
    // The fill is looked at before the record goes in: with a threshold of 1 byte, a run wakes the reader when an earlier
    // record is still waiting.
    [InlineData(1, 4, new[] { 4, 8 })]                    // looked at on runs 4 and 8 only (runs 3 and 7 left a record)
    [InlineData(1, 0, new[] { 2, 4, 6, 8 })]             // looked at on every run: each run after a drain leaves one
    [InlineData(1 << 20, 4, new int[0])]                 // never as full as the threshold: never woken
    [InlineData(0, 4, new[] { 1, 2, 3, 4, 5, 6, 7, 8 })] // the kernel's own policy: a record the reader has caught up with wakes it
    public void ARecordWakesTheReaderOnlyOverTheThresholdOnTheCheckedRuns(int threshold, int checkEvery, int[] wakingRuns)
    {
        KernelRequirement.EnsureRoot();
        using var ring = BpfMap.Create(MapSpec.RingBuffer("t_wakering", 16384));
        using var value = BpfMap.Create(MapSpec.Array("t_wakevalue", RecordOffset + RecordBytes, 1));
        var code = new InstructionBuilder().LoadMapValue(Register.R6, value.Fd.Value, 0);
        MapLookup.Increment(code, Register.R6, HitsOffset);
        RingOutput.Emit(code, "ring", Register.R6, RecordOffset, null, RecordBytes, Register.R6, LostOffset, threshold,
            checkEvery > 0 ? new WakeupCheckCounter(Register.R6, HitsOffset, checkEvery) : null);
        var bytecode = code.Mov64(Register.R0, 2).Exit().Assemble().BindMaps(new Dictionary<string, int> { ["ring"] = ring.Fd.Value });
        using var program = BpfProgram.Load(new ProgramSpec("t_wake", XdpTestRun.Type, bytecode.Bytecode));
        using var reader = new RingBufferReader(ring);
        using var waiter = new WakeupPoller(ring.Fd);

        var woken = new List<int>();
        var delivered = 0;
        for (var run = 1; run <= 8; run++)
        {
            Run(program.Fd.Value);
            // A wakeup arrives at once; without one the wait lasts its whole timeout (longer when one is expected, so a
            // slow machine cannot turn an expected wakeup into a miss).
            if (waiter.Wait(wakingRuns.Contains(run) ? 2000 : 50))
            {
                woken.Add(run);
                delivered += reader.Drain(_ => { });
                // Edge-triggered: that wakeup was reported once; with nothing new the next wait finds nothing.
                Assert.False(waiter.Wait(0));
            }
        }
        delivered += reader.Drain(_ => { });
        Assert.Equal(wakingRuns, woken);
        Assert.Equal(8, delivered);
    }

    /// <summary>
    /// RingBufferReader.BatchBytes: a reader waits while less than its batch is pending (a record committed without a
    /// wakeup does not end the wait: the timeout does), returns at once when the batch is there, and, with no batch,
    /// at once when anything is pending; a wakeup that came while nobody waited ends the next wait at once (while its
    /// records are still there: epoll asks the ring again before it reports one).
    /// </summary>
    [Fact]
    public void AReaderWithABatchSleepsUntilTheBatchOrAWakeup()
    {
        KernelRequirement.EnsureRoot();
        using var ring = BpfMap.Create(MapSpec.RingBuffer("t_batchring", 16384));
        using var value = BpfMap.Create(MapSpec.Array("t_batchvalue", RecordOffset + RecordBytes, 1));
        using var quiet = Load(ring, value, threshold: 1 << 20);
        using var waking = Load(ring, value, threshold: 1);
        using var reader = new RingBufferReader(ring);

        Run(quiet.Fd.Value);
        reader.BatchBytes = 4096;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(reader.WaitForData(200));
        Assert.True(clock.ElapsedMilliseconds >= 190, $"returned after {clock.ElapsedMilliseconds} ms with one record of a 4096-byte batch pending");

        reader.BatchBytes = 0;
        clock.Restart();
        Assert.True(reader.WaitForData(5000));
        Assert.True(clock.ElapsedMilliseconds < 2500, $"with no batch a pending record waited {clock.ElapsedMilliseconds} ms");

        reader.BatchBytes = RecordBytes + 8;
        clock.Restart();
        Assert.True(reader.WaitForData(5000));
        Assert.True(clock.ElapsedMilliseconds < 2500, $"a full batch waited {clock.ElapsedMilliseconds} ms");
        Assert.Equal(1, reader.Drain(_ => { }));

        // Two records, the second woke the reader while it was not waiting (a record was waiting: over the 1-byte
        // threshold); the next wait, with less than a batch pending, ends at that wakeup instead of its timeout.
        Run(waking.Fd.Value);
        Run(waking.Fd.Value);
        reader.BatchBytes = 4096;
        clock.Restart();
        Assert.True(reader.WaitForData(5000));
        Assert.True(clock.ElapsedMilliseconds < 2500, $"the kept wakeup did not end the wait: {clock.ElapsedMilliseconds} ms");
        Assert.Equal(2, reader.Drain(_ => { }));
    }

    /// <summary>A framed drain takes one window (1 MiB) a pass: with more than that waiting, the next wait does not sleep for a batch.</summary>
    [Fact]
    public void AWaitAfterADrainThatLeftRecordsReturnsAtOnce()
    {
        KernelRequirement.EnsureRoot();
        using var ring = BpfMap.Create(MapSpec.RingBuffer("t_passring", 4 << 20));
        using var value = BpfMap.Create(MapSpec.Array("t_passvalue", RecordOffset + RecordBytes, 1));
        using var quiet = Load(ring, value, threshold: 1 << 30);
        using var reader = new RingBufferReader(ring) { BatchBytes = 4 << 20 };
        Run(quiet.Fd.Value, repeat: 90_000); // 90,000 records of 24 bytes: about two windows
        var first = reader.DrainFramed((_, _) => { });
        Assert.InRange(first, 1, 89_999);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(reader.WaitForData(5000));
        Assert.True(clock.ElapsedMilliseconds < 2500, $"waited {clock.ElapsedMilliseconds} ms with records left by the last pass");
        var total = first;
        int more;
        while ((more = reader.DrainFramed((_, _) => { })) > 0) total += more;
        Assert.Equal(90_000, total);
    }

    private static BpfProgram Load(BpfMap ring, BpfMap value, int threshold)
    {
        var code = new InstructionBuilder().LoadMapValue(Register.R6, value.Fd.Value, 0);
        MapLookup.Increment(code, Register.R6, HitsOffset);
        RingOutput.Emit(code, "ring", Register.R6, RecordOffset, null, RecordBytes, Register.R6, LostOffset, threshold);
        var bytecode = code.Mov64(Register.R0, 2).Exit().Assemble().BindMaps(new Dictionary<string, int> { ["ring"] = ring.Fd.Value });
        return BpfProgram.Load(new ProgramSpec("t_batch", XdpTestRun.Type, bytecode.Bytecode));
    }

    [Fact]
    public void TheCheckIntervalMustBeAPowerOfTwo()
    {
        var code = new InstructionBuilder();
        Assert.Throws<ArgumentOutOfRangeException>(() => RingOutput.EmitWakeupFlags(code, "ring", 1, new WakeupCheckCounter(Register.R6, 0, 6)));
    }

    private static void Run(int programFd, uint repeat = 1) => XdpTestRun.Run(programFd, repeat);
}
