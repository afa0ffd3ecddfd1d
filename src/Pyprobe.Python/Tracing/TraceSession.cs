using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Python.Probes;
using Pyprobe.Usdt;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>Tunables of a session.</summary>
/// <param name="RingBufferBytes">Ring size: a power of two, a multiple of the page size.</param>
/// <param name="AttachMode">Force an attach path; null picks the best this kernel offers.</param>
public sealed record TraceSessionOptions(uint RingBufferBytes = 16 << 20, UprobeAttachMode? AttachMode = null);

/// <summary>
/// Probes attached to one Python binary: generated programs, their maps and links, and the ring
/// buffer their events arrive in. Disposing detaches everything and lowers every semaphore it raised.
/// </summary>
public sealed class TraceSession : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly BpfMap _scratch;
    private readonly List<AttachedProbe> _probes = [];

    private TraceSession(TraceTarget target, UprobeAttachMode mode, BpfMap ring, BpfMap scratch)
    {
        Target = target;
        AttachMode = mode;
        _scratch = scratch;
        _owned.Add(ring);
        _owned.Add(scratch);
        Reader = new RingBufferReader(ring);
    }

    public TraceTarget Target { get; }
    public UprobeAttachMode AttachMode { get; }
    public RingBufferReader Reader { get; }

    /// <summary>Attached probes, indexed by the id their events carry.</summary>
    public IReadOnlyList<AttachedProbe> Probes => _probes;

    /// <summary>Probe hits that ran the program (in the traced processes).</summary>
    public ulong Hits => _scratch.SumPerCpuCounter(0, UsdtEventProgram.HitsCounterOffset);

    /// <summary>Events the kernel could not put in the ring buffer because it was full.</summary>
    public ulong Lost => _scratch.SumPerCpuCounter(0, UsdtEventProgram.LostCounterOffset);

    public static TraceSession Attach(TraceTarget target, IReadOnlyList<PythonProbe> probes, TraceSessionOptions? options = null)
    {
        options ??= new TraceSessionOptions();
        MemlockLimit.RemoveIfNeeded();
        var mode = options.AttachMode ?? KernelFeatures.PreferredAttachMode;
        if (!KernelFeatures.HasAttachCookie)
            throw new NotSupportedException("this kernel lacks BPF attach cookies (Linux 5.15+ is required)");

        var maxRecord = probes.Max(p => LayoutOf(p).MaxRecordSize);
        var ring = BpfMap.Create(MapSpec.RingBuffer("pyprobe_events", options.RingBufferBytes));
        var scratch = BpfMap.Create(MapSpec.PerCpuArray("pyprobe_scratch", (uint)((16 + maxRecord + 7) / 8 * 8), 1));
        var session = new TraceSession(target, mode, ring, scratch);
        try
        {
            BpfMap? targets = null;
            if (!target.AllProcesses)
            {
                // Belt and braces next to the link's own pid filter (which filtered by thread on 6.6–6.9).
                targets = BpfMap.Create(MapSpec.Hash("pyprobe_pids", 4, 1, (uint)Math.Max(1, target.Pids.Count)));
                session._owned.Add(targets);
                foreach (var pid in target.Pids) targets.Update(BitConverter.GetBytes(pid), [1]);
            }
            var maps = new UsdtEventMaps(ring.Fd.Value, scratch.Fd.Value, targets?.Fd.Value);
            foreach (var probe in probes)
                session.AttachProbe(probe, maps);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private void AttachProbe(PythonProbe probe, UsdtEventMaps maps)
    {
        var usdt = Target.Binary.FindProbe(PythonProbeCatalog.Provider, probe.Name)
            ?? throw new UsdtException($"{Target.DisplayPath} has no probe python:{probe.Name}");
        var id = (uint)_probes.Count;
        var layout = LayoutOf(probe);
        _probes.Add(new AttachedProbe(id, probe, layout, usdt.Sites.Count));

        // One program per distinct argument spec (sites with %rip arguments differ per site).
        foreach (var group in usdt.Sites.GroupBy(site => HasRipRelative(site) ? $"{site.ArgumentText}@{site.Address:x}" : site.ArgumentText))
        {
            var sites = group.ToList();
            var code = UsdtEventProgram.Generate(layout, sites[0].Arguments, maps, sites[0].Address, Target.Binary.ResolveSymbolAddress);
            using var program = BpfProgram.Load(new ProgramSpec(Shorten(probe.Name), ProgramType.Kprobe, code.Bytecode, AttachMode.ExpectedAttachType()));
            var uprobeSites = sites.Select(s => new UprobeSite(s.FileOffset, s.SemaphoreFileOffset, id)).ToList();
            if (Target.AllProcesses) _owned.Add(Link(program, uprobeSites, 0));
            else foreach (var pid in Target.Pids) _owned.Add(Link(program, uprobeSites, pid));
        }
    }

    private IUprobeLink Link(BpfProgram program, IReadOnlyList<UprobeSite> sites, int pid) => AttachMode switch
    {
        UprobeAttachMode.UprobeMulti => UprobeMultiLink.Attach(program, Target.AttachPath, sites, pid),
        _ => PerfEventUprobeLink.Attach(program, Target.AttachPath, sites, pid),
    };

    /// <summary>Decodes a record handed out by <see cref="Reader"/>.</summary>
    public ProbeEvent Decode(ReadOnlySpan<byte> record)
    {
        var id = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(record[UsdtEventLayout.ProbeIdOffset..]);
        if (id >= _probes.Count) throw new UsdtException($"event with unknown probe id {id}");
        return new ProbeEvent(record, _probes[(int)id]);
    }

    private static UsdtEventLayout LayoutOf(PythonProbe probe)
    {
        var strings = probe.Arguments.Select((a, i) => (a, i)).Where(x => x.a.Kind == ProbeArgumentKind.CString).Select(x => x.i).ToList();
        return new UsdtEventLayout(probe.Arguments.Count, strings);
    }

    private static bool HasRipRelative(UsdtSite site) => site.Arguments.Any(a => a is UsdtRipRelativeArgument);

    /// <summary>Program names show up in bpftool; keep them recognisable within 15 bytes.</summary>
    private static string Shorten(string probe) => "py_" + probe.Replace("__", "_", StringComparison.Ordinal);

    public void Dispose()
    {
        // Links first (detach, lower semaphores), then the reader and maps.
        for (var i = _owned.Count - 1; i >= 2; i--) _owned[i].Dispose();
        Reader.Dispose();
        _owned[1].Dispose();
        _owned[0].Dispose();
    }
}
