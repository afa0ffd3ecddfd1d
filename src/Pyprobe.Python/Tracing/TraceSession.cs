using System.Buffers.Binary;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Bpf.Sys;
using Pyprobe.Python.Probes;
using Pyprobe.Usdt;
using Pyprobe.Usdt.CodeGen;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Tracing;

/// <summary>Tunables of a session.</summary>
/// <param name="RingBufferBytes">Ring size: a power of two, a multiple of the page size.</param>
/// <param name="AttachMode">Force an attach path; null picks the best this kernel offers.</param>
/// <param name="Tids">Only these threads (filtered in the kernel); null for all.</param>
/// <param name="EntryGate">On 3.11, raise the line semaphore so function__entry fires (see <see cref="Tracing.EntryGate"/>).</param>
/// <param name="WakeupFraction">The reader is woken when the ring is this full; below that it must poll (see <see cref="PollInterval"/>).</param>
/// <param name="InternStrings">
/// Send file and function names once per process instead of with every event (see
/// <see cref="StringInterning"/>). Off by default because it measured slower: on CPython 3.9 and
/// kernel 6.18, reading the str header and looking the key up cost about 70–100 ns per event more
/// than copying the names, even 128-byte paths (bpf_probe_read_user_str copies a word at a time).
/// Records are smaller with it, which matters only when the ring, not the traced program, is the limit.
/// </param>
public sealed record TraceSessionOptions(uint RingBufferBytes = 16 << 20, UprobeAttachMode? AttachMode = null, IReadOnlyList<int>? Tids = null, bool EntryGate = true, double WakeupFraction = 1.0 / 16, bool InternStrings = false);

/// <summary>
/// Probes attached to one or more Python binaries: generated programs, their maps and links, and the
/// ring buffer their events arrive in. Disposing detaches everything and lowers every semaphore raised.
/// </summary>
public sealed class TraceSession : IDisposable
{
    private readonly List<IDisposable> _links = [];
    private readonly List<BpfMap> _maps = [];
    private readonly BpfMap _scratch;
    private readonly List<AttachedProbe> _probes = [];
    private bool _disposed;

    private TraceSession(UprobeAttachMode mode, BpfMap ring, BpfMap scratch)
    {
        AttachMode = mode;
        _scratch = scratch;
        _maps.Add(ring);
        _maps.Add(scratch);
        Reader = new RingBufferReader(ring);
    }

    public UprobeAttachMode AttachMode { get; }
    public RingBufferReader Reader { get; }

    /// <summary>
    /// How often a reader should look at the ring even without a wakeup: records are committed
    /// without waking the reader until the ring is <see cref="TraceSessionOptions.WakeupFraction"/> full.
    /// </summary>
    public const int PollInterval = 10;

    /// <summary>Attached probes, indexed by the id their events carry.</summary>
    public IReadOnlyList<AttachedProbe> Probes => _probes;

    /// <summary>Targets whose 3.11 entry gate is open.</summary>
    public IReadOnlyList<TraceTarget> GatedTargets { get; private set; } = [];

    /// <summary>Probe hits in the traced processes (after the pid and tid filters).</summary>
    public ulong Hits => _scratch.SumPerCpuCounter(0, UsdtEventProgram.HitsCounterOffset);

    /// <summary>Events the kernel could not put in the ring buffer because it was full, summed over CPUs.</summary>
    public ulong Lost => _scratch.SumPerCpuCounter(0, UsdtEventProgram.LostCounterOffset);

    /// <summary>
    /// Attaches <paramref name="probes"/> to every target. A probe a target lacks is skipped for that
    /// target (callers check support first and tell the user); if nothing at all can be attached, throws.
    /// </summary>
    public static TraceSession Attach(IReadOnlyList<TraceTarget> targets, IReadOnlyList<PythonProbe> probes, TraceSessionOptions? options = null)
    {
        options ??= new TraceSessionOptions();
        if (targets.Count == 0 || probes.Count == 0) throw new ArgumentException("nothing to attach");
        MemlockLimit.RemoveIfNeeded();
        var mode = options.AttachMode ?? KernelFeatures.PreferredAttachMode;
        if (!KernelFeatures.HasAttachCookie)
            throw new NotSupportedException("this kernel lacks BPF attach cookies (Linux 5.15 or newer is required)");

        var scratchSize = probes.Max(p => UsdtEventProgram.ScratchValueSize(LayoutOf(p)));
        var ring = BpfMap.Create(MapSpec.RingBuffer("pyprobe_events", options.RingBufferBytes));
        BpfMap scratch;
        try
        {
            scratch = BpfMap.Create(MapSpec.PerCpuArray("pyprobe_scratch", (uint)scratchSize, 1));
        }
        catch
        {
            ring.Dispose();
            throw;
        }
        var session = new TraceSession(mode, ring, scratch);
        try
        {
            var pids = targets.SelectMany(t => t.Pids).Distinct().ToList();
            BpfMap? pidFilter = null;
            if (targets.All(t => !t.AllProcesses))
            {
                // Belt and braces next to the link's own pid filter (which filtered by thread on 6.6–6.9).
                pidFilter = BpfMap.Create(MapSpec.Hash("pyprobe_pids", 4, 1, (uint)pids.Count));
                session._maps.Add(pidFilter);
                foreach (var pid in pids) pidFilter.Update(BitConverter.GetBytes(pid), [1]);
            }
            var threshold = (int)Math.Clamp(options.RingBufferBytes * options.WakeupFraction, 0, int.MaxValue);
            var maps = new UsdtEventMaps(ring.Fd.Value, scratch.Fd.Value, pidFilter?.Fd.Value, options.Tids, threshold);
            if (options.InternStrings && probes.Any(IsInternable))
            {
                var sent = BpfMap.Create(new MapSpec("pyprobe_sent", MapType.LruHash, StringInterning.KeySize, 1, SentStringCapacity));
                session._maps.Add(sent);
                session._sentMapFd = sent.Fd.Value;
            }
            var gated = new List<TraceTarget>();
            foreach (var target in targets)
            {
                foreach (var probe in probes)
                {
                    var usdt = target.Binary.FindProbe(PythonProbeCatalog.Provider, probe.Name);
                    if (usdt is not null) session.AttachProbe(target, probe, usdt, maps);
                }
                if (options.EntryGate && probes.Any(p => p.Name == "function__entry") && EntryGate.IsNeeded(target))
                {
                    session._links.Add(EntryGate.Open(target, mode));
                    gated.Add(target);
                }
            }
            if (session._probes.Count == 0) throw new UsdtException("none of the requested probes exists in the target");
            session.GatedTargets = gated;
            return session;
        }
        catch (SyscallException e) when (e.Is(Errno.EACCES) || e.Is(Errno.EPERM))
        {
            // Missing privileges are the user's to fix, not an internal error: say which, in one line.
            session.Dispose();
            throw new UsdtException(e.Message, e);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private void AttachProbe(TraceTarget target, PythonProbe probe, UsdtProbe usdt, UsdtEventMaps maps)
    {
        var id = (uint)_probes.Count;
        var layout = LayoutOf(probe, _sentMapFd is int fd ? InterningFor(target, probe, fd) : null);
        _probes.Add(new AttachedProbe(id, probe, target, layout, usdt.Sites.Count));

        // One program per distinct argument spec (sites with %rip arguments differ per site).
        foreach (var sites in TargetLinks.SitesBySpec(usdt))
        {
            var code = UsdtEventProgram.Generate(layout, sites[0].Arguments, maps, sites[0].Address, target.Binary.ResolveSymbolAddress);
            using var program = BpfProgram.Load(new ProgramSpec(ProgramName(probe.Name), ProgramType.Kprobe, code.Bytecode, AttachMode.ExpectedAttachType()));
            var uprobeSites = sites.Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset, id)).ToList();
            TargetLinks.Attach(AttachMode, program, target, uprobeSites, _links);
        }
    }

    /// <summary>Decodes a record handed out by <see cref="Reader"/>.</summary>
    public ProbeEvent Decode(ReadOnlySpan<byte> record)
    {
        var id = BinaryPrimitives.ReadUInt32LittleEndian(record[UsdtEventLayout.ProbeIdOffset..]);
        if (id >= _probes.Count) throw new UsdtException($"event with unknown probe id {id}");
        var e = new ProbeEvent(record, _probes[(int)id], SentStrings);
        if (_sentMapFd is not null) e.RememberSentStrings();
        return e;
    }

    /// <summary>Strings the kernel sent once (interning); resolves the records that only name them.</summary>
    public SentStrings SentStrings { get; } = new();

    /// <summary>Detaches every probe now (semaphores drop to 0) while keeping the ring readable.</summary>
    public void Detach()
    {
        foreach (var link in _links) link.Dispose();
        _links.Clear();
    }

    private static UsdtEventLayout LayoutOf(PythonProbe probe, StringInterning? interning = null)
    {
        var strings = probe.Arguments.Select((a, i) => (a, i)).Where(x => x.a.Kind == ProbeArgumentKind.CString).Select(x => x.i).ToList();
        return new UsdtEventLayout(probe.Arguments.Count, strings, interning);
    }

    /// <summary>Distinct strings remembered in the kernel before the least recently used are sent again.</summary>
    private const uint SentStringCapacity = 65536;

    private int? _sentMapFd;

    /// <summary>
    /// The hot probes pass co_filename and co_name, CPython str objects whose compact ASCII bytes
    /// follow a PyASCIIObject header: 48 bytes up to 3.11 (with wstr), 40 from 3.12.
    /// </summary>
    private static bool IsInternable(PythonProbe probe) => probe.Name is "function__entry" or "function__return" or "line";

    private static StringInterning? InterningFor(TraceTarget target, PythonProbe probe, int mapFd)
    {
        if (!IsInternable(probe) || CPythonFacts.For(target.Version) is not { } facts) return null;
        return new StringInterning(facts.Str.LengthFromAsciiData, mapFd, StrLayout.CompactAsciiBits);
    }


    /// <summary>Program names show up in bpftool; keep them recognisable within 15 bytes.</summary>
    private static string ProgramName(string probe) => "py_" + probe.Replace("__", "_", StringComparison.Ordinal);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Detach();
        Reader.Dispose();
        for (var i = _maps.Count - 1; i >= 0; i--) _maps[i].Dispose();
    }
}
