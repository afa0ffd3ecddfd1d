using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.CpuQueues;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Bench;

/// <summary>
/// <see cref="RingFill"/> for pyprobe's queues per CPU (trace's default): records are written into the queue of the
/// bench's CPU by an XDP program that sends with pyprobe's own <see cref="CpuQueueOutput"/>, while pyprobe is stopped,
/// until the queue refuses one; then pyprobe continues and the time until its tail reaches the head is its drain time.
/// A queue holds less than the bench's ring did (at most 8 MiB a CPU), so the cycles repeat until 2,000,000 records were
/// drained. The records' timestamps lie 10 ms in the past, so none is held back as possibly still being written.
/// </summary>
internal static unsafe class QueueFill
{
    private const int MapTypeArray = 2, MapTypeRingBuf = 27, ProgTypeXdp = 6, SIGSTOP = 19, SIGCONT = 18;
    private const ulong MinimumRecords = 2_000_000;

    [DllImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern int SchedSetAffinity(int pid, nint size, ulong* mask);

    /// <summary>Whether pyprobe sends its records to queues per CPU (else: the ring).</summary>
    public static bool Uses(int pyprobePid) => FindMap(pyprobePid, MapTypeArray, fields => fields.TryGetValue("map_flags", out var f) && (Convert.ToUInt32(f, 16) & MapSpec.Mmapable) != 0) is not null;

    public static RingFill.Result Run(int pyprobePid, uint totalBytes, byte[] record)
    {
        var (queuesFdNumber, queuesFields) = FindMap(pyprobePid, MapTypeArray, fields => (Convert.ToUInt32(fields["map_flags"], 16) & MapSpec.Mmapable) != 0)
            ?? throw new InvalidOperationException("pyprobe has no CPU queues open");
        var (doorbellFdNumber, _) = FindMap(pyprobePid, MapTypeRingBuf, fields => fields["max_entries"] == "4096")
            ?? throw new InvalidOperationException("pyprobe has no doorbell ring open");
        var layout = CpuQueueLayout.Share(totalBytes, PossibleCpus.Count, (uint)TraceSession.QueuePayloadBytes);
        var valueSize = long.Parse(queuesFields["value_size"]);
        if (layout.ValueSize != valueSize) throw new InvalidOperationException($"pyprobe's queues are {valueSize} bytes a CPU, the bench expects {layout.ValueSize}");
        var queuesFd = Native.StealFd(pyprobePid, queuesFdNumber);
        var doorbellFd = Native.StealFd(pyprobePid, doorbellFdNumber);
        ulong mask = 1; // CPU 0: every run of the program, and so every record, goes to one queue
        Assert(SchedSetAffinity(0, sizeof(ulong), &mask) == 0, "sched_setaffinity");
        try
        {
            var scratchSize = EventProgramParts.ScratchValueSize(layout);
            using var scratch = BpfMap.Create(MapSpec.Array("bench_qrecord", (uint)scratchSize, 1));
            var value = new byte[scratchSize];
            record.CopyTo(value, EventProgramParts.RecordOffset);
            scratch.Update(new byte[4], value);
            var code = new InstructionBuilder()
                .LoadMapValue(Register.R8, scratch.Fd.Value, 0)
                .Call(HelperFunction.KtimeGetNs)
                .Add64(Register.R0, -10_000_000)
                .StoreMem(MemorySize.DoubleWord, Register.R8, EventProgramParts.RecordOffset + UsdtEventLayout.TimestampOffset, Register.R0);
            EventProgramParts.EmitSend(code, Register.R8, null, record.Length, (int)layout.Capacity / 16, queues: layout);
            code.Mov64(Register.R0, 2).Exit();
            var bound = code.Assemble().BindMaps(new Dictionary<string, int> { [EventProgramParts.QueuesMap] = queuesFd, [EventProgramParts.RingMap] = doorbellFd });
            using var program = BpfProgram.Load(new ProgramSpec("bench_qfill", (ProgramType)ProgTypeXdp, bound.Bytecode));

            var page = Environment.SystemPageSize;
            var control = (byte*)Native.Mmap(null, (nuint)page, 1 /* PROT_READ */, 1 /* MAP_SHARED */, queuesFd, 0);
            Assert(control != (byte*)-1, "mmap of the queue's counters");
            try
            {
                var packet = new byte[64];
                ulong written = 0, refused = 0;
                double seconds = 0, cpuSeconds = 0;
                while (written < MinimumRecords)
                {
                    var lostBefore = Lost(scratch);
                    var headBefore = Volatile.Read(ref *(ulong*)(control + CpuQueueLayout.HeadOffset));
                    RingFill.Stop(pyprobePid);
                    ulong head;
                    double cpuBefore;
                    try
                    {
                        fixed (byte* data = packet)
                            do RingFill.TestRun(program.Fd.Value, data, packet.Length, 20000);
                            while (Lost(scratch) == lostBefore);
                    }
                    finally
                    {
                        head = Volatile.Read(ref *(ulong*)(control + CpuQueueLayout.HeadOffset));
                        cpuBefore = RingFill.CpuSeconds(pyprobePid);
                        Native.Kill(pyprobePid, SIGCONT);
                    }
                    var clock = Stopwatch.StartNew();
                    while (Volatile.Read(ref *(ulong*)(control + CpuQueueLayout.TailOffset)) < head && clock.Elapsed < TimeSpan.FromSeconds(120)) Thread.SpinWait(20);
                    seconds += clock.Elapsed.TotalSeconds;
                    cpuSeconds += RingFill.CpuSeconds(pyprobePid) - cpuBefore;
                    Assert(Volatile.Read(ref *(ulong*)(control + CpuQueueLayout.TailOffset)) >= head, "pyprobe drained its queue within 120 s");
                    written += (head - headBefore) / CpuQueueLayout.FramedBytes((uint)record.Length);
                    refused += Lost(scratch) - lostBefore;
                }
                return new RingFill.Result(written, refused, seconds, cpuSeconds);
            }
            finally
            {
                Native.Munmap(control, (nuint)page);
            }
        }
        finally
        {
            mask = ~0UL;
            SchedSetAffinity(0, sizeof(ulong), &mask);
            Native.Close(queuesFd);
            Native.Close(doorbellFd);
        }
    }

    private static ulong Lost(BpfMap scratch)
    {
        var value = new byte[scratch.Spec.ValueSize];
        scratch.TryLookup(new byte[4], value);
        return BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(EventProgramParts.LostCounterOffset));
    }

    private static void Assert(bool condition, string what)
    {
        if (!condition) throw new InvalidOperationException($"{what} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>The fd number in <paramref name="pid"/> of a BPF map of <paramref name="type"/> whose fdinfo fields match, with those fields.</summary>
    public static (int Fd, Dictionary<string, string> Fields)? FindMap(int pid, int type, Func<Dictionary<string, string>, bool> match)
    {
        foreach (var path in Directory.GetFiles($"/proc/{pid}/fdinfo"))
        {
            string text;
            try { text = File.ReadAllText(path); } catch (IOException) { continue; }
            // An epoll fd repeats "tfd:" per watched fd: the first of each name is kept.
            var fields = text.Split('\n').Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
                .GroupBy(p => p[0].Trim()).ToDictionary(g => g.Key, g => g.First()[1].Trim());
            if (fields.TryGetValue("map_type", out var t) && t == type.ToString() && match(fields))
                return (int.Parse(Path.GetFileName(path)), fields);
        }
        return null;
    }
}
