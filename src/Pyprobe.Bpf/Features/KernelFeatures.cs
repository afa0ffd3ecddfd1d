using System.Text;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Features;

/// <summary>
/// What this kernel can do, probed once at start by asking the kernel (never by version numbers, which
/// distributions backport around).
/// </summary>
public static unsafe class KernelFeatures
{
    /// <summary>mov64 r0, 0; exit: the empty program of the feature probes (and of the uprobe warm-up).</summary>
    internal static readonly byte[] ReturnZero = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

    private static readonly Lazy<(bool Works, bool PidFilterFix)> UprobeMultiLazy = new(ProbeUprobeMulti);
    private static readonly Lazy<bool> PerfEventLinkLazy = new(ProbePerfEventLink);
    // Both in one program first (a kernel new enough for one has the other): one load instead of two where it loads.
    private static readonly Lazy<bool> BpfLoopAndGrowingMapsLazy = new(() => ProbeGrowingMaps(withBpfLoop: true));
    private static readonly Lazy<bool> BpfLoopLazy = new(() => BpfLoopAndGrowingMapsLazy.Value || ProbeBpfLoop());
    private static readonly Lazy<bool> GrowingMapsLazy = new(() => BpfLoopAndGrowingMapsLazy.Value || ProbeGrowingMaps(withBpfLoop: false));
    // uprobe_multi first: where it works (the usual case) the perf-link probe is not loaded at all.
    private static readonly Lazy<bool> CookieLazy = new(() => HasUprobeMulti || PerfEventLinkLazy.Value);

    /// <summary>BPF_TRACE_UPROBE_MULTI links (6.6+): a link on "/" fails with EBADF where supported.</summary>
    public static bool HasUprobeMulti => UprobeMultiLazy.Value.Works;

    /// <summary>uprobe_multi filters by process, not by thread (the 6.10 fix): pid -1 is rejected with EINVAL.</summary>
    public static bool HasUprobeMultiPidFilterFix => UprobeMultiLazy.Value.PidFilterFix;

    /// <summary>BPF perf links (5.15+), which also carry BPF cookies for perf-event uprobes.</summary>
    public static bool HasPerfEventLink => PerfEventLinkLazy.Value;

    /// <summary>bpf_get_attach_cookie works on some uprobe attach path.</summary>
    public static bool HasAttachCookie => CookieLazy.Value;

    /// <summary>bpf_loop (5.17+): a loop whose body the verifier checks once, as a callback.</summary>
    public static bool HasBpfLoop => BpfLoopLazy.Value;

    /// <summary>
    /// Probe programs may use hashes that allocate as they grow (<see cref="MapSpec.GrowingHash"/>; 6.1+, which gave
    /// BPF a memory allocator for any context): older kernels let tracing programs use only preallocated hashes.
    /// </summary>
    public static bool HasGrowingMaps => GrowingMapsLazy.Value;

    /// <summary>
    /// Records can go to a queue per CPU (<see cref="CpuQueues.CpuQueueLayout"/>): its programs reserve with BPF_CMPXCHG
    /// (5.12+), which every kernel with perf links (5.15+) or uprobe_multi has; the mmapable array (5.5+) is tried when
    /// made. PYPROBE_EVENT_RING=1 keeps the ring buffer (to compare the two).
    /// </summary>
    public static bool HasCpuQueues => Environment.GetEnvironmentVariable("PYPROBE_EVENT_RING") != "1" && (HasUprobeMulti || HasPerfEventLink);

    /// <summary>USDT semaphores through uprobe ref_ctr_offset (4.20+).</summary>
    public static bool HasRefCtrOffset => File.Exists("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset");

    /// <summary>The uprobe PMU for the perf-event fallback path.</summary>
    public static bool HasUprobePmu => File.Exists("/sys/bus/event_source/devices/uprobe/type");

    /// <summary>The best way to attach uprobes here; uprobe_multi only with the PID fix, like libbpf.</summary>
    public static UprobeAttachMode PreferredAttachMode
        => PerfEventForced || !HasUprobeMultiPidFilterFix
            ? UprobeAttachMode.PerfEvent
            : UprobeAttachMode.UprobeMulti;

    /// <summary>PYPROBE_FORCE_PERF_EVENT=1: use the perf-event fallback even where uprobe_multi works (for testing it).</summary>
    public static bool PerfEventForced => Environment.GetEnvironmentVariable("PYPROBE_FORCE_PERF_EVENT") == "1";

    /// <summary>
    /// Asks every question an attach will ask (each answer is kept), so that a thread with time to spare can answer them
    /// before the attaching thread needs them: each probe loads a program (0.1-0.4 ms).
    /// </summary>
    public static void ProbeAhead()
    {
        ProbeUprobeMultiAhead();
        _ = PreferredAttachMode;
        _ = HasAttachCookie;
        _ = HasCpuQueues;
        _ = HasBpfLoop;
        _ = HasGrowingMaps;
    }

    /// <summary>
    /// Asks whether uprobe_multi works (and has the PID filter fix) alone: what a uprobe registration needs to know first.
    /// </summary>
    /// <param name="keepEmptyProgram">Keep the empty uprobe_multi program the probe loads, for <see cref="TakeEmptyUprobeMultiProgram"/>.</param>
    public static void ProbeUprobeMultiAhead(bool keepEmptyProgram = false)
    {
        if (keepEmptyProgram) _keepEmptyUprobeMulti = true;
        _ = HasUprobeMultiPidFilterFix;
    }

    public static string Describe() => new StringBuilder()
        .Append("uprobe_multi=").Append(HasUprobeMulti ? "yes" : "no")
        .Append(" pid-filter-fix=").Append(HasUprobeMultiPidFilterFix ? "yes" : "no")
        .Append(" perf-link=").Append(HasPerfEventLink ? "yes" : "no")
        .Append(" ref_ctr=").Append(HasRefCtrOffset ? "yes" : "no")
        .Append(" bpf_loop=").Append(HasBpfLoop ? "yes" : "no")
        .Append(" growing-maps=").Append(HasGrowingMaps ? "yes" : "no")
        .Append(" attach=").Append(PreferredAttachMode)
        .ToString();

    /// <summary>
    /// Both questions with one program: a link on a directory with pid 0 gets EBADF from a kernel that has uprobe_multi,
    /// and with pid -1 EINVAL from one that checks the pid (the filter fix) before the path.
    /// </summary>
    private static (bool, bool) ProbeUprobeMulti()
    {
        var program = TryLoadTrivial(AttachType.TraceUprobeMulti);
        if (program is null) return (false, false);
        var works = LinkUprobeMulti(program, pid: 0) == (int)Errno.EBADF;
        var answer = (works, works && LinkUprobeMulti(program, pid: -1) == (int)Errno.EINVAL);
        if (works && _keepEmptyUprobeMulti) _emptyUprobeMulti = program;
        else program.Dispose();
        return answer;
    }

    private static volatile bool _keepEmptyUprobeMulti;
    private static BpfProgram? _emptyUprobeMulti;

    /// <summary>
    /// The empty uprobe_multi program the feature probe loaded when <see cref="ProbeUprobeMultiAhead"/> was asked to keep it, once
    /// (the caller disposes it); else null. The uprobe warm-up registers it rather than load the same two instructions again.
    /// </summary>
    internal static BpfProgram? TakeEmptyUprobeMultiProgram() => Interlocked.Exchange(ref _emptyUprobeMulti, null);

    private static int LinkUprobeMulti(BpfProgram program, int pid)
    {
        var path = "/\0"u8.ToArray();
        ulong offset = 0;
        fixed (byte* pathPointer = path)
        {
            var attr = new LinkCreateUprobeMultiAttr
            {
                ProgFd = (uint)program.Fd.Value,
                AttachType = (uint)AttachType.TraceUprobeMulti,
                Path = (ulong)pathPointer,
                Offsets = (ulong)&offset,
                Count = 1,
                Pid = (uint)pid,
            };
            var result = BpfSyscall.Invoke(BpfCommand.LinkCreate, ref attr);
            if (result >= 0)
            {
                LibC.Close((int)result);
                return 0;
            }
            return (int)-result;
        }
    }

    private static bool ProbePerfEventLink()
    {
        using var program = TryLoadTrivial(AttachType.None);
        if (program is null) return false;
        // An invalid target fd: EBADF means the kernel understood a perf link, EINVAL that it did not.
        var attr = new LinkCreatePerfEventAttr { ProgFd = (uint)program.Fd.Value, TargetFd = uint.MaxValue, AttachType = (uint)AttachType.PerfEvent };
        var result = BpfSyscall.Invoke(BpfCommand.LinkCreate, ref attr);
        if (result >= 0) LibC.Close((int)result);
        return result == -(int)Errno.EBADF;
    }

    /// <summary>bpf_loop(1, callback that returns 1, NULL, 0), loaded: only a kernel that has the helper accepts it.</summary>
    internal static bool ProbeBpfLoop() => KprobeLoads(LoopOnceAndExit(new Asm.InstructionBuilder()));

    /// <summary>Ends <paramref name="code"/> with bpf_loop(1, callback that returns 1, NULL, 0) and a return of 0.</summary>
    private static Asm.InstructionBuilder LoopOnceAndExit(Asm.InstructionBuilder code) => code
        .Mov64(Asm.Register.R1, 1)
        .LoadFunction(Asm.Register.R2, "callback")
        .Mov64(Asm.Register.R3, 0)
        .Mov64(Asm.Register.R4, 0)
        .Call(Asm.HelperFunction.Loop)
        .Mov64(Asm.Register.R0, 0)
        .Exit()
        .Subprogram("callback", c => c.Mov64(Asm.Register.R0, 1).Exit());

    /// <summary>
    /// A kprobe program that looks a key up in a hash made with BPF_F_NO_PREALLOC, loaded: refused where tracing programs
    /// need preallocated hashes. <paramref name="withBpfLoop"/>: it also calls bpf_loop as <see cref="ProbeBpfLoop"/> does,
    /// so that loading answers both questions (and failing, neither).
    /// </summary>
    internal static bool ProbeGrowingMaps(bool withBpfLoop)
    {
        try
        {
            using var map = BpfMap.Create(MapSpec.GrowingHash("pyprobe_feature", 4, 8, 1));
            var code = new Asm.InstructionBuilder()
                .StoreImm(Asm.MemorySize.Word, Asm.Register.FramePointer, -4, 0)
                .LoadMapFd(Asm.Register.R1, map.Fd.Value)
                .Mov64(Asm.Register.R2, Asm.Register.FramePointer).Add64(Asm.Register.R2, -4)
                .Call(Asm.HelperFunction.MapLookupElem);
            return KprobeLoads(withBpfLoop ? LoopOnceAndExit(code) : code.Mov64(Asm.Register.R0, 0).Exit());
        }
        catch (SyscallException)
        {
            return false; // not even the map
        }
    }

    /// <summary>Whether the kernel loads <paramref name="code"/> as a kprobe program (the feature probes' question).</summary>
    private static bool KprobeLoads(Asm.InstructionBuilder code)
    {
        try
        {
            using var program = BpfProgram.Load(new ProgramSpec("pyprobe_feature", ProgramType.Kprobe, code.Assemble().Bytecode, AttachType.None));
            return true;
        }
        catch (SyscallException)
        {
            return false;
        }
    }

    private static BpfProgram? TryLoadTrivial(AttachType attachType)
    {
        try
        {
            return BpfProgram.Load(new ProgramSpec("pyprobe_feature", ProgramType.Kprobe, ReturnZero, attachType));
        }
        catch (SyscallException)
        {
            return null;
        }
    }
}
