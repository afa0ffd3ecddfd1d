using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Bench;

/// <summary>
/// The kernel's bare uprobe cost: a `mov r0, 0; exit` program on the function__entry sites (and the
/// function__return ones: calls' two sites), with the semaphore raised through ref_ctr_offset exactly as pyprobe
/// does (uprobe_multi link).
/// </summary>
internal sealed class BareUprobe : IDisposable
{
    private readonly BpfProgram _program;
    private readonly UprobeMultiLink _link;

    private BareUprobe(BpfProgram program, UprobeMultiLink link)
    {
        _program = program;
        _link = link;
    }

    /// <param name="pid">the process, or 0 for every process running <paramref name="binary"/></param>
    public static BareUprobe Attach(string binary, int pid, bool withReturn = false)
    {
        MemlockLimit.RemoveIfNeeded();
        var target = pid > 0 ? TargetResolver.ForProcesses([pid])[0] : TargetResolver.ForBinary(binary);
        var probe = target.Binary.FindProbe("python", "function__entry") ?? throw new InvalidOperationException($"{binary} has no function__entry");
        var code = new InstructionBuilder().Mov64(Register.R0, 0).Exit().Assemble();
        var program = BpfProgram.Load(new ProgramSpec("bench_bare", ProgramType.Kprobe, code.Bytecode, AttachType.TraceUprobeMulti));
        var probes = withReturn
            ? [probe, target.Binary.FindProbe("python", "function__return") ?? throw new InvalidOperationException($"{binary} has no function__return")]
            : new[] { probe };
        var sites = probes.SelectMany(p => p.Sites).Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset, 0)).ToList();
        return new BareUprobe(program, UprobeMultiLink.Attach(program, target.AttachPath, sites, pid));
    }

    public void Dispose()
    {
        _link.Dispose();
        _program.Dispose();
    }
}

/// <summary>
/// Measures a running pyprobe's consumer alone: records in pyprobe's own layout (UsdtEventLayout) for function__entry
/// are written into its ring buffer from the kernel while pyprobe is stopped (SIGSTOP), until the ring is full; then
/// pyprobe continues (SIGCONT) and the time from then to its consumer position catching up with the producer
/// is the time pyprobe took to decode, format and write them. The producer never competes with the consumer for a
/// CPU, so the figure is the consumer's, whatever the producer's speed. The ring is found among pyprobe's fds
/// (/proc/PID/fdinfo, map_type 27) and copied with pidfd_getfd; an XDP program run through BPF_PROG_TEST_RUN
/// (repeat) writes one record per run with bpf_ringbuf_output, never waking the reader (it polls every 10 ms).
/// </summary>
internal static unsafe class RingFill
{
    private const int MapTypeRingBuf = 27, ProgTypeXdp = 6, BpfProgTestRun = 10, SIGSTOP = 19, SIGCONT = 18;

    /// <param name="CpuSeconds">pyprobe's own CPU time (user + system) while it drained: on a busy machine the wall time
    /// includes waiting for a CPU, this does not.</param>
    public sealed record Result(ulong Written, ulong Refused, double Seconds, double CpuSeconds)
    {
        public double EventsPerSecond => Written / Seconds;
        public double EventsPerCpuSecond => Written / CpuSeconds;
    }

    public static Result Run(int pyprobePid, int targetPid, string filename, string funcname, int lineno, int cycles)
    {
        var (ringFdNumber, ringSize) = FindRing(pyprobePid);
        var ringFd = Native.StealFd(pyprobePid, ringFdNumber);
        try
        {
            var record = Record(targetPid, filename, funcname, lineno);
            using var template = BpfMap.Create(MapSpec.Array("bench_record", (uint)record.Length, 1));
            template.Update(new byte[4], record);
            using var stats = BpfMap.Create(MapSpec.Array("bench_stats", 16, 1));
            var code = new InstructionBuilder()
                .LoadMapValue(Register.R6, template.Fd.Value, 0)
                .Call(HelperFunction.KtimeGetNs)
                .StoreMem(MemorySize.DoubleWord, Register.R6, 0, Register.R0)
                .Mov64(Register.R4, 1) // BPF_RB_NO_WAKEUP: pyprobe polls every 10 ms and drains whatever is there
                .LoadMapFd(Register.R1, ringFd)
                .Mov64(Register.R2, Register.R6)
                .Mov64(Register.R3, record.Length)
                .Call(HelperFunction.RingbufOutput)
                .Mov64(Register.R7, 1)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, "ok")
                .LoadMapValue(Register.R1, stats.Fd.Value, 8)
                .AtomicAdd64(Register.R1, 0, Register.R7)
                .Jump("out")
                .Label("ok")
                .LoadMapValue(Register.R1, stats.Fd.Value, 0)
                .AtomicAdd64(Register.R1, 0, Register.R7)
                .Label("out")
                .Mov64(Register.R0, 2)
                .Exit()
                .Assemble();
            using var program = BpfProgram.Load(new ProgramSpec("bench_fill", (ProgramType)ProgTypeXdp, code.Bytecode));

            var page = Environment.SystemPageSize;
            var consumerPage = Native.Mmap(null, (nuint)page, 1 /* PROT_READ */, 1 /* MAP_SHARED */, ringFd, 0);
            var producerPage = Native.Mmap(null, (nuint)page, 1, 1, ringFd, page);
            if (consumerPage == (void*)-1 || producerPage == (void*)-1) throw new InvalidOperationException($"mmap of the ring failed: errno {Marshal.GetLastPInvokeError()}");
            try
            {
                var packet = new byte[64];
                var counts = new byte[16];
                var seconds = 0.0;
                var cpuSeconds = 0.0;
                for (var cycle = 0; cycle < cycles; cycle++)
                {
                    stats.TryLookup(new byte[4], counts);
                    var refusedBefore = BinaryPrimitives.ReadUInt64LittleEndian(counts.AsSpan(8));
                    ulong producerEnd;
                    double cpuBefore;
                    Stop(pyprobePid);
                    try
                    {
                        fixed (byte* data = packet)
                        {
                            // Fill until the ring refuses a record: it is full.
                            do
                            {
                                TestRun(program.Fd.Value, data, packet.Length, 20000);
                                stats.TryLookup(new byte[4], counts);
                            }
                            while (BinaryPrimitives.ReadUInt64LittleEndian(counts.AsSpan(8)) == refusedBefore);
                        }
                    }
                    finally
                    {
                        producerEnd = Volatile.Read(ref *(ulong*)producerPage);
                        cpuBefore = CpuSeconds(pyprobePid);
                        Native.Kill(pyprobePid, SIGCONT);
                    }
                    // From SIGCONT: a raw capture drains the whole ring in one pass, so the consumer position moves once, at the end.
                    var clock = Stopwatch.StartNew();
                    while (Volatile.Read(ref *(ulong*)consumerPage) < producerEnd && clock.Elapsed < TimeSpan.FromSeconds(120)) Thread.SpinWait(20);
                    seconds += clock.Elapsed.TotalSeconds;
                    cpuSeconds += CpuSeconds(pyprobePid) - cpuBefore;
                    if (Volatile.Read(ref *(ulong*)consumerPage) < producerEnd) throw new InvalidOperationException("pyprobe did not drain its ring within 120 s");
                }
                stats.TryLookup(new byte[4], counts);
                return new Result(BinaryPrimitives.ReadUInt64LittleEndian(counts), BinaryPrimitives.ReadUInt64LittleEndian(counts.AsSpan(8)), seconds, cpuSeconds);
            }
            finally
            {
                Native.Munmap(consumerPage, (nuint)page);
                Native.Munmap(producerPage, (nuint)page);
            }
        }
        finally
        {
            Native.Close(ringFd);
        }
    }

    /// <summary>User + system CPU time of a process so far (/proc/PID/stat, clock ticks of 10 ms).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
    }

    /// <summary>Stops pyprobe and waits until it is stopped (state T in /proc/PID/stat).</summary>
    public static void Stop(int pid)
    {
        Native.Kill(pid, SIGSTOP);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T')) return;
            Thread.Sleep(1);
        }
        throw new InvalidOperationException($"pyprobe (pid {pid}) did not stop");
    }

    /// <summary>A function__entry record exactly as pyprobe's BPF program writes it (probe id 0).</summary>
    public static byte[] Record(int pid, string filename, string funcname, int lineno)
    {
        var layout = new UsdtEventLayout(3, [0, 1]);
        var f = Encoding.UTF8.GetBytes(filename);
        var n = Encoding.UTF8.GetBytes(funcname);
        var record = new byte[layout.StringsOffset + f.Length + n.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(UsdtEventLayout.TgidOffset), (uint)pid);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(UsdtEventLayout.TidOffset), (uint)pid);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(UsdtEventLayout.ProbeIdOffset), 0);
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(UsdtEventLayout.ValueOffset(0)), 0x7f0000001000);
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(UsdtEventLayout.ValueOffset(1)), 0x7f0000002000);
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(UsdtEventLayout.ValueOffset(2)), lineno);
        BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(layout.LengthOffset(0)), (ushort)f.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(layout.LengthOffset(1)), (ushort)n.Length);
        f.CopyTo(record, layout.StringsOffset);
        n.CopyTo(record, layout.StringsOffset + f.Length);
        return record;
    }

    private static (int Fd, long Size) FindRing(int pid)
    {
        var (fd, fields) = QueueFill.FindMap(pid, MapTypeRingBuf, _ => true)
            ?? throw new InvalidOperationException($"pyprobe (pid {pid}) has no ring buffer map open");
        return (fd, long.Parse(fields["max_entries"]));
    }

    public static void TestRun(int programFd, byte* data, int length, uint repeat)
    {
        var attr = stackalloc byte[80];
        new Span<byte>(attr, 80).Clear();
        *(uint*)attr = (uint)programFd;
        *(uint*)(attr + 8) = (uint)length;
        *(ulong*)(attr + 16) = (ulong)data;
        *(uint*)(attr + 32) = repeat;
        long r;
        do r = Native.Syscall(Native.SysBpf, BpfProgTestRun, (long)attr, 80);
        while (r < 0 && Marshal.GetLastPInvokeError() == 4 /* EINTR: a signal to the bench; the runs done so far are counted */);
        if (r < 0) throw new InvalidOperationException($"BPF_PROG_TEST_RUN failed: errno {Marshal.GetLastPInvokeError()}");
        LastDurationNs = *(uint*)(attr + 36);
    }

    /// <summary>The kernel's average time per program run in the last BPF_PROG_TEST_RUN.</summary>
    public static uint LastDurationNs { get; private set; }
}
