using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.CpuQueues;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Bench;

/// <summary>
/// Where a traced call's time goes: on the function__entry site, side by side in one run, an empty program, bpftrace's
/// counter, and pyprobe's USDT event program cut down step by step (built from the very pieces <see cref="UsdtEventProgram.Build"/>
/// uses), then whole, then through the real CLI. With kernel.bpf_stats_enabled on, each row gives the traced program's
/// ns per call and the BPF program's own ns per event, so the trap and each part of the program are separated.
/// </summary>
internal static class ProgramBreakdown
{
    /// <summary>What runs on the site. The cut-down steps are the shipped program's own code, stopped earlier.</summary>
    internal enum Step { None, Empty, BpftraceCount, HeaderNoHits, Header, FixedRecord, Whole, Pairs, WholeBefore, WholeCookie, WholeMapFilter, WholeConstantFilter, Cli, FixedReads, FixedQueue, WholeQueue, PairsQueue, CliRing, EmptyStack56, EmptyStack64, EmptyClock, EmptyPidTgid, EmptyScratch }

    private static string Label(Step step) => step switch
    {
        Step.None => "no tracing",
        Step.Empty => "empty program (bare uprobe)",
        Step.EmptyStack56 => "empty program that writes 8 bytes at 56 below its frame (56 bytes of stack: the kernel stack)",
        Step.EmptyStack64 => "empty program that writes 8 bytes at 64 below its frame (64 bytes of stack: a private stack per CPU, 6.13+)",
        Step.BpftraceCount => "bpftrace `@ = count()` (-p PID)",
        Step.EmptyClock => "empty program that reads the clock (bpf_ktime_get_ns, the record's timestamp)",
        Step.EmptyPidTgid => "empty program that asks for its pid and tgid (bpf_get_current_pid_tgid)",
        Step.EmptyScratch => "empty program that finds its scratch slice and counts the hit",
        Step.HeaderNoHits => "(a) without the hits counter (a locked add on the per-CPU value)",
        Step.Header => "(a) pyprobe: filter + scratch + hits + header + arguments, nothing sent",
        Step.FixedRecord => "(b) + ring output of the fixed part (no names)",
        Step.FixedQueue => "(b) with the queue per CPU in place of the ring (CpuQueueOutput)",
        Step.FixedReads => "(b) + two 8-byte bpf_probe_read_user of the names (not shipped: what a read of the target's memory costs)",
        Step.Whole => "(c) + both names copied whole on every event (where the memo cannot be kept: a binary without a code-dealloc site), through the ring",
        Step.Pairs => "(d) names by reference after a function's first event (the name-pair memo, 3.8–3.11 and 3.15), through the ring",
        Step.WholeQueue => "(c) through the queue per CPU (as shipped on 3.15 before the memo reached it)",
        Step.PairsQueue => "(d) through the queue per CPU = as shipped",
        Step.WholeBefore => "(c) as it was: probe id from the attach cookie, ring fill looked at on every event",
        Step.WholeCookie => "(c) with the probe id from the attach cookie (fill looked at every 64th event)",
        Step.WholeMapFilter => "(c) with the process filter as it was: a lookup in the targets hash (perf-event links; kernels without the uprobe_multi pid fix)",
        Step.WholeConstantFilter => "(c) with the process filter as it is now on those kernels: the tgid compared as a constant",
        Step.Cli => "pyprobe trace -p PID -o FILE (the real CLI)",
        Step.CliRing => "pyprobe trace -p PID -o FILE through the ring (PYPROBE_EVENT_RING=1, as before the queue per CPU)",
        _ => step.ToString(),
    };

    private static readonly Step[] Steps = Environment.GetEnvironmentVariable("BENCH_STEPS") is { } only ? only.Split(',').Select(Enum.Parse<Step>).ToArray()
        : [Step.None, Step.Empty, Step.EmptyStack56, Step.EmptyStack64, Step.EmptyPidTgid, Step.EmptyScratch, Step.EmptyClock, Step.BpftraceCount, Step.HeaderNoHits, Step.Header, Step.FixedRecord, Step.FixedQueue, Step.FixedReads, Step.Whole, Step.WholeQueue, Step.Pairs, Step.PairsQueue,
            Step.WholeBefore, Step.WholeCookie, Step.WholeMapFilter, Step.WholeConstantFilter, Step.Cli, Step.CliRing];

    private static bool Queued(Step step) => step is Step.FixedQueue or Step.WholeQueue or Step.PairsQueue;

    /// <summary>As the CLI's defaults: a 16 MiB ring whose reader is woken when it is 1/16 full, polled every 10 ms otherwise.</summary>
    private const uint RingBytes = 16 << 20;
    private const int WakeupThreshold = (int)(RingBytes / 16);

    private sealed record Sample(double NsPerCall, double? ProgramNsPerEvent, double? ProgramNsPerCall, long? Records, long? Lost);

    public static void Section(Bench bench, Report report, Py p39, Py? p315)
    {
        report.Section("Where a traced call's time goes",
            $"""
            The workload of the overhead section ({bench.Calls:N0} calls of `leaf()`, `-p PID`), on the `function__entry` site, with
            `kernel.bpf_stats_enabled` on for the whole section (restored after; it is on for every row, so every row pays its own
            timing). Rows (a)–(c) are pyprobe's USDT event program built by the bench from the same emitters `UsdtEventProgram.Build`
            uses (EventProgramParts.EmitStart/EmitHeader, UsdtEventProgram.EmitArguments/EmitStrings, EventProgramParts.EmitSend),
            stopped after each step, loaded and attached (uprobe_multi, with the probe's cookie) by the bench, its ring
            ({RingBytes >> 20} MiB, woken at 1/16 full as the CLI's) drained by a thread polling every 10 ms; (c) is `Build` itself.
            The "queue per CPU" rows send the same records to the CLI's queues instead (an mmapable array, one queue per CPU
            sharing {RingBytes >> 20} MiB, a compare-exchange to reserve, the header written last; Bpf/CpuQueues), read by the
            reader `trace` uses, which merges the CPUs by time; the CLI rows run `pyprobe trace` with them (the default) and
            with the ring (PYPROBE_EVENT_RING=1).
            "ns per call" is the traced program's own view; "program ns per event" is run_time_ns / run_cnt of the BPF program(s)
            (bpftrace's and the CLI's found through their links); the rest of the added cost is the uprobe trap.
            "records / lost": what the ring delivered and what the program counted as lost (leaf() calls plus the workload's few other
            function entries). The 8-byte reads row is the bench's own two bpf_probe_read_user calls added to (b), to tell the fixed
            cost of reading the target's memory from the bytes a string copy moves. The two "(c) as it was" rows are `Build` with this branch's savings turned back
            (UsdtEventOptions.ProbeId null: the probe id from bpf_get_attach_cookie; WakeupCheckEvery 1: bpf_ringbuf_query on every
            event), measured beside the program as shipped. The two filtering rows are (c) as it runs where links do not filter by
            process (perf-event uprobes, uprobe_multi before the pid-filter fix; on this kernel a `-p` link filters, so (c) has no filter):
            the tgid looked up in the session's hash of pids as before, or compared as a constant as each target's programs now do.
            The three "empty program that ..." rows each add one of (a)'s parts to the empty program, to price it alone: the
            clock read every record's timestamp needs, the pid/tgid helper, and finding the scratch slice with the hit counted.
            """);
        using var bpfStats = BpfStatsSwitch.Enable();
        foreach (var py in new[] { p39, p315 }.OfType<Py>())
        {
            var samples = Steps.ToDictionary(s => s, _ => new List<Sample>());
            for (var rep = 0; rep < bench.Reps; rep++)
            {
                var order = rep % 2 == 0 ? Steps : Steps.Reverse().ToArray();
                foreach (var step in order)
                {
                    if (step is Step.Pairs or Step.PairsQueue && py.Version is not ("3.8" or "3.9" or "3.10" or "3.11" or "3.15")) continue; // the memo is for 3.8–3.11 and 3.15
                    try
                    {
                        var s = RunOnce(bench, py, step);
                        samples[step].Add(s);
                        Bench.Log($"breakdown {py.Version} rep {rep + 1} {step}: {s.NsPerCall:0} ns/call" +
                            (s.ProgramNsPerEvent is double p ? $", program {p:0} ns/event" : "") + (s.Records is long n ? $", {n} records, {s.Lost} lost" : ""));
                    }
                    catch (Exception e)
                    {
                        Bench.Log($"breakdown {py.Version} rep {rep + 1} {step} failed: {e.Message}");
                    }
                }
            }
            Table(report, py, samples);
        }
    }

    private static void Table(Report report, Py py, Dictionary<Step, List<Sample>> samples)
    {
        // A step left out by BENCH_STEPS has no samples: its figures are NaN, not a crash of the whole section.
        double Median(Step s, Func<Sample, double?> f) =>
            samples.TryGetValue(s, out var taken) && taken.Select(f).OfType<double>().ToList() is { Count: > 0 } v ? Stats.Median(v) : double.NaN;
        var none = Median(Step.None, s => s.NsPerCall);
        var bare = Median(Step.Empty, s => s.NsPerCall) - none;
        double? previous = null;
        double Program(Step s) => Median(s, x => x.ProgramNsPerEvent);
        if (py.Version == "3.9")
            report.Headline($"**Where a traced call's time goes** (CPython {py.FullVersion}, BPF program ns per event with bpf_stats on, the trap around it ≈ {bare - Program(Step.Empty):0} ns): " +
                $"empty program {Program(Step.Empty):0}, bpftrace count {Program(Step.BpftraceCount):0}; an empty program that only reads the clock (the record's timestamp, bpf_ktime_get_ns) {Program(Step.EmptyClock):0}; pyprobe's program with nothing sent {Program(Step.Header):0}, " +
                $"+ a fixed record to the ring {Program(Step.FixedRecord):0}, to the queue per CPU instead {Program(Step.FixedQueue):0}; + both names copied whole {Program(Step.Whole):0} (queue: {Program(Step.WholeQueue):0}), " +
                $"names by reference (the name-pair memo, 3.8–3.11 and 3.15) {Program(Step.Pairs):0} (queue, as shipped: {Program(Step.PairsQueue):0}) " +
                $"(two 8-byte reads of the target's memory alone: {Program(Step.FixedReads) - Program(Step.FixedRecord):+0;-0}); before this run's savings {Program(Step.WholeBefore):0}.");
        report.Text($"### CPython {py.FullVersion}, function__entry");
        report.Table(["case", "ns per call", "added ns per call", "× bare uprobe", "program ns per event", "step adds (program ns)", "records / lost"],
            Steps.Where(step => step is not (Step.Pairs or Step.PairsQueue) || samples[step].Count > 0).Select(step =>
            {
                var list = samples[step];
                if (list.Count == 0) return (IReadOnlyList<string>)[Label(step), "failed", "", "", "", "", ""];
                var added = Median(step, s => s.NsPerCall) - none;
                var program = Median(step, s => s.ProgramNsPerEvent);
                var whole = Median(Step.Whole, s => s.ProgramNsPerEvent);
                var stepAdds = step is Step.FixedRecord or Step.Whole && previous is double p && !double.IsNaN(program) ? $"+{program - p:0}"
                    : step is Step.FixedReads && !double.IsNaN(program) ? $"{program - Median(Step.FixedRecord, s => s.ProgramNsPerEvent):+0;-0} against (b)"
                    : step is Step.WholeBefore or Step.WholeCookie or Step.WholeMapFilter or Step.WholeConstantFilter && !double.IsNaN(program) ? $"{program - whole:+0;-0} against (c)"
                    : step is Step.Pairs && !double.IsNaN(program) ? $"{program - whole:+0;-0} against (c)"
                    : step is Step.FixedQueue && !double.IsNaN(program) ? $"{program - Median(Step.FixedRecord, s => s.ProgramNsPerEvent):+0;-0} against (b)"
                    : step is Step.WholeQueue && !double.IsNaN(program) ? $"{program - whole:+0;-0} against (c)"
                    : step is Step.PairsQueue && !double.IsNaN(program) ? $"{program - Median(Step.Pairs, s => s.ProgramNsPerEvent):+0;-0} against (d)"
                    : step is Step.EmptyClock or Step.EmptyPidTgid or Step.EmptyScratch && !double.IsNaN(program) ? $"{program - Median(Step.Empty, s => s.ProgramNsPerEvent):+0;-0} against empty"
                    : step is Step.HeaderNoHits && !double.IsNaN(program) ? $"{program - Median(Step.Header, s => s.ProgramNsPerEvent):+0;-0} against (a)"
                    : "–";
                if (step is Step.Header or Step.FixedRecord or Step.Whole) previous = program;
                var counted = list.Where(s => s.Records is not null).ToList();
                return [
                    Label(step),
                    Stats.Spread(list.Select(s => s.NsPerCall)),
                    step == Step.None ? "–" : added.ToString("0"),
                    step == Step.None ? "–" : (added / bare).ToString("0.00"),
                    double.IsNaN(program) ? "–" : Stats.Spread(list.Select(s => s.ProgramNsPerEvent).OfType<double>()),
                    stepAdds,
                    counted.Count == 0 ? "–" : $"{Stats.CountSpread(counted.Select(s => (double)s.Records!.Value))} / {Stats.CountSpread(counted.Select(s => (double)s.Lost!.Value))}",
                ];
            }));
    }

    private static Sample RunOnce(Bench bench, Py py, Step step)
    {
        using var workload = Child.Start([.. py.Command, bench.Workload, bench.Calls.ToString()], env: py.Env);
        var ready = workload.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException($"workload did not start: {string.Join(" | ", workload.Err)}");
        var pid = int.Parse(ready.Line.Split(' ')[1]);
        Child? tracer = null;
        OwnProgram? own = null;
        try
        {
            switch (step)
            {
                case Step.BpftraceCount:
                    tracer = Child.Start(["bpftrace", "-p", pid.ToString(), "-e", Cases.CountScript(py.Binary, perPid: false)]);
                    if (tracer.WaitLine(l => l.StartsWith("Attaching", StringComparison.Ordinal), TimeSpan.FromSeconds(60)) is null)
                        throw new InvalidOperationException($"bpftrace did not attach: {string.Join(" | ", tracer.Err)}");
                    Thread.Sleep(bench.BpftraceSettle);
                    break;
                case Step.Cli or Step.CliRing:
                    tracer = Child.Start([bench.Pyprobe, "trace", "-p", pid.ToString(), "-o", bench.TempFile("bd")],
                        env: step == Step.CliRing ? new Dictionary<string, string> { ["PYPROBE_EVENT_RING"] = "1" } : null);
                    Cases.WaitAttached(tracer);
                    break;
                case Step.FixedQueue or Step.WholeQueue or Step.PairsQueue or Step.Empty or Step.EmptyStack56 or Step.EmptyStack64 or Step.EmptyClock or Step.EmptyPidTgid or Step.EmptyScratch or Step.HeaderNoHits or Step.Header or Step.FixedRecord or Step.FixedReads or Step.Whole or Step.Pairs or Step.WholeBefore or Step.WholeCookie or Step.WholeMapFilter or Step.WholeConstantFilter:
                    own = OwnProgram.Attach(pid, step);
                    break;
            }
            var before = own?.RunTime() ?? (tracer is null ? default : ProgramRunTime.OfProcess(tracer.Pid));
            workload.WriteLine("go");
            // Read at the result line, while the tracer is still attached.
            var resultLine = workload.WaitLine(l => l.StartsWith("result ", StringComparison.Ordinal), TimeSpan.FromMinutes(5))
                ?? throw new InvalidOperationException(workload.Process.HasExited
                    ? $"workload exited ({workload.Process.ExitCode}) without a result: {string.Join(" | ", workload.Err.TakeLast(5))}"
                    : "workload timed out");
            var after = own?.RunTime() ?? (tracer is null ? default : ProgramRunTime.OfProcess(tracer.Pid));
            if (!workload.Wait(TimeSpan.FromMinutes(2))) throw new InvalidOperationException("workload timed out");
            var result = resultLine.Line.Split(' ').Skip(1).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
            var calls = long.Parse(result["calls"]);
            var ns = (double.Parse(result["end"]) - double.Parse(result["start"])) * 1e9 / calls;
            var (records, lost) = own?.Finish() ?? (null, null);
            if (tracer is not null)
            {
                tracer.Signal(Native.SIGINT);
                tracer.Wait(TimeSpan.FromMinutes(1));
            }
            var runs = after.RunCount - before.RunCount;
            if (step == Step.None) return new Sample(ns, null, null, null, null);
            return new Sample(ns, runs > 0 ? (double)(after.RunTimeNs - before.RunTimeNs) / runs : null, (double)(after.RunTimeNs - before.RunTimeNs) / calls, records, lost);
        }
        finally
        {
            own?.Dispose();
            tracer?.Dispose();
        }
    }

    /// <summary>A program the bench builds from pyprobe's emitters, its maps, its link, and the thread draining its ring.</summary>
    private sealed class OwnProgram : IDisposable
    {
        private readonly List<IDisposable> _owned = [];
        private BpfProgram? _program;
        private CpuScratchMap? _scratch;
        private IRecordReader? _reader;
        private Thread? _drainer;
        private volatile bool _stop;
        private long _records;

        public static OwnProgram Attach(int pid, Step step)
        {
            MemlockLimit.RemoveIfNeeded();
            var own = new OwnProgram();
            try
            {
                var target = TargetResolver.ForProcesses([pid])[0];
                var probe = target.Binary.FindProbe("python", "function__entry") ?? throw new InvalidOperationException("no function__entry probe");
                // The name-pair memo's maps as a session makes them (the bench's leaf() never dies, so no forgetting program).
                StringPairMemo? pairs = null;
                if (step is Step.Pairs or Step.PairsQueue)
                {
                    if (target.Version is not { Minor: <= 11 or >= 15 } || CPythonFacts.For(target.Version) is not { } facts) throw new InvalidOperationException("the name-pair memo is for 3.8–3.11 and 3.15");
                    var memo = own.Own(BpfMap.Create(MapSpec.Array("bench_pairs", StringPairMemo.ValueSize, StringPairMemo.Slots)));
                    var epochs = own.Own(BpfMap.Create(MapSpec.Array("bench_epochs", 8, 65536)));
                    pairs = new StringPairMemo(memo.Fd.Value, epochs.Fd.Value, 65536, facts.Str.LengthFromAsciiData, StrLayout.CompactAsciiBits);
                }
                var layout = new UsdtEventLayout(3, [0, 1], pairs: pairs);
                // Queued steps: the queues as a trace session makes them (16 MiB shared by the CPUs), the ring only to wake the reader.
                var queues = Queued(step) ? CpuQueueLayout.Share(RingBytes, PossibleCpus.Count, (uint)layout.MaxRecordSize) : null;
                var ring = own.Own(BpfMap.Create(MapSpec.RingBuffer("bench_ring", queues is null ? RingBytes : 4096)));
                var scratchSize = Math.Max(UsdtEventProgram.ScratchValueSize(layout), queues is null ? 0 : EventProgramParts.ScratchValueSize(queues));
                own._scratch = CpuScratchMap.Make("bench_scratch", EventProgramParts.Scratch, scratchSize, spec => own.Own(BpfMap.Create(spec)));
                CpuQueueMap? queueMap = null;
                if (queues is not null)
                {
                    var array = own.Own(BpfMap.Create(MapSpec.MmapableArray("bench_queues", queues.ValueSize, (uint)PossibleCpus.Count)));
                    queueMap = new CpuQueueMap(array.Fd.Value, queues);
                    own._reader = own.Own(new CpuQueueReader(array, queues, ring, UsdtEventLayout.TimestampOffset) { BatchBytes = queues.Capacity / 16 });
                }
                else own._reader = own.Own(new RingBufferReader(ring));
                var targets = own.Own(BpfMap.Create(MapSpec.Hash("bench_targets", 4, 1, 1024)));
                targets.Update(BitConverter.GetBytes(pid), [1]);
                var fds = EventProgramParts.Bindings(ring.Fd.Value, own._scratch.Map.Fd.Value, targets.Fd.Value, queueMap);
                if (pairs is not null)
                {
                    fds[StringPairMemo.MapName] = pairs.MapFd;
                    fds[StringPairMemo.EpochsMap] = pairs.EpochsFd;
                }
                foreach (var sites in TargetLinks.SitesBySpec(probe))
                {
                    var code = Build(step, layout, sites[0], target.Binary.ResolveSymbolAddress, pid, queues).BindMaps(fds);
                    var program = own.Own(BpfProgram.Load(new ProgramSpec("bench_step", ProgramType.Kprobe, code.Bytecode, AttachType.TraceUprobeMulti)));
                    own._program ??= program;
                    own.Own(UprobeMultiLink.Attach(program, target.AttachPath, sites.Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset, 0)).ToList(), pid));
                }
                own._drainer = new Thread(own.Drain) { IsBackground = true, Name = "bench ring drain" };
                own._drainer.Start();
                return own;
            }
            catch
            {
                own.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The shipped program (<see cref="UsdtEventProgram.Build"/>) for <see cref="Step.Whole"/>; for the others the same
        /// pieces in the same order, stopped after the step. Filtering as on this kernel's -p path (the link filters by process).
        /// </summary>
        private static AssembledProgram Build(Step step, UsdtEventLayout layout, UsdtSite site, Func<string, ulong> resolve, int pid, CpuQueueLayout? queues)
        {
            const uint probeId = 0;
            var options = step switch
            {
                Step.WholeBefore => new UsdtEventOptions(FilterTargets: false, WakeupThreshold: WakeupThreshold, ProbeId: null, WakeupCheckEvery: 1),
                Step.WholeCookie => new UsdtEventOptions(FilterTargets: false, WakeupThreshold: WakeupThreshold, ProbeId: null),
                Step.WholeMapFilter => new UsdtEventOptions(FilterTargets: true, WakeupThreshold: WakeupThreshold, ProbeId: probeId),
                Step.WholeConstantFilter => new UsdtEventOptions(FilterTargets: false, WakeupThreshold: WakeupThreshold, ProbeId: probeId, Tgids: [pid]),
                Step.WholeQueue or Step.PairsQueue => new UsdtEventOptions(FilterTargets: false, WakeupThreshold: (int)queues!.Capacity / 16, ProbeId: probeId, Queues: queues),
                _ => new UsdtEventOptions(FilterTargets: false, WakeupThreshold: WakeupThreshold, ProbeId: probeId),
            };
            if (step is Step.Whole or Step.WholeQueue or Step.Pairs or Step.PairsQueue or Step.WholeBefore or Step.WholeCookie or Step.WholeMapFilter or Step.WholeConstantFilter)
                return UsdtEventProgram.Build(layout, site.Arguments, options, site.Address, resolve);
            var code = new InstructionBuilder();
            if (step is Step.EmptyStack56 or Step.EmptyStack64)
                code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(step == Step.EmptyStack56 ? -56 : -64), 0);
            else if (step == Step.EmptyClock) code.Call(HelperFunction.KtimeGetNs);
            else if (step == Step.EmptyPidTgid) code.Call(HelperFunction.GetCurrentPidTgid);
            else if (step == Step.EmptyScratch)
            {
                CpuScratch.EmitFind(code, EventProgramParts.ScratchMap, EventProgramParts.Scratch, Register.R8, "out");
                MapLookup.Increment(code, Register.R8, EventProgramParts.HitsCounterOffset);
            }
            else if (step != Step.Empty)
            {
                Register ctx = Register.R6, pidTgid = Register.R7, scratch = Register.R8;
                EventProgramParts.EmitStart(code, ctx, pidTgid, scratch, filterTargets: false, tids: null, "out", countHit: step != Step.HeaderNoHits);
                EventProgramParts.EmitHeader(code, ctx, pidTgid, scratch, options.ProbeId);
                UsdtEventProgram.EmitArguments(code, layout, site.Arguments, ctx, scratch, site.Address, resolve);
                if (step == Step.FixedReads)
                {
                    // Only the fixed cost of a user-memory read: 8 bytes of each name into the stack, nothing kept.
                    var buffer = code.Stack.Allocate(8, "read");
                    for (var j = 0; j < layout.StringArguments.Length; j++)
                        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, buffer)
                            .Mov64(Register.R2, 8)
                            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, EventProgramParts.Field(UsdtEventLayout.ValueOffset(layout.StringArguments[j])))
                            .Call(HelperFunction.ProbeReadUser);
                }
                if (step is Step.FixedRecord or Step.FixedReads) EventProgramParts.EmitSend(code, scratch, size: null, layout.StringsOffset, WakeupThreshold, options.WakeupCheckEvery);
                if (step is Step.FixedQueue) EventProgramParts.EmitSend(code, scratch, size: null, layout.StringsOffset, (int)queues!.Capacity / 16, queues: queues);
            }
            return code.Label("out").Mov64(Register.R0, 0).Exit().Assemble();
        }

        private T Own<T>(T item) where T : IDisposable
        {
            _owned.Add(item);
            return item;
        }

        private void Drain()
        {
            while (!_stop)
            {
                _reader!.WaitForData(10);
                _records += _reader.Drain(_ => { });
            }
        }

        public (long RunTimeNs, long RunCount) RunTime() => ProgramRunTime.OfProgramFd(_program?.Fd.Value ?? -1);

        /// <summary>Stops draining once the ring is empty; the records delivered and the lost counter (null when nothing is sent).</summary>
        public (long? Records, long? Lost) Finish()
        {
            _stop = true;
            _drainer?.Join();
            _drainer = null;
            for (int n; (n = _reader!.Drain(_ => { })) > 0;) _records += n;
            var lost = (long)_scratch!.SumCounter(EventProgramParts.LostCounterOffset);
            return _records == 0 && lost == 0 ? (null, null) : (_records, lost);
        }

        public void Dispose()
        {
            _stop = true;
            _drainer?.Join();
            for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        }
    }
}
