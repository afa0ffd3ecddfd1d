using System.Globalization;
using System.Text;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// The fallback for kernels without uprobe_multi: one uprobe PMU perf event per site, bound to the
/// program with a BPF perf link (5.15+, carries the cookie) or PERF_EVENT_IOC_SET_BPF before that.
/// </summary>
public sealed unsafe class PerfEventUprobeLink : IUprobeLink
{
    private const string PmuDirectory = "/sys/bus/event_source/devices/uprobe";
    private const int RefCtrOffsetShift = 32;

    private readonly List<KernelFileDescriptor> _fds;

    private PerfEventUprobeLink(List<KernelFileDescriptor> fds, int siteCount)
    {
        _fds = fds;
        SiteCount = siteCount;
    }

    public int SiteCount { get; }

    /// <param name="pid">0 = all processes; otherwise only this process.</param>
    public static PerfEventUprobeLink Attach(BpfProgram program, string path, IReadOnlyList<UprobeSite> sites, int pid = 0, bool returnProbe = false)
    {
        if (program.Spec.ExpectedAttachType != AttachType.None)
            throw new ArgumentException($"program '{program.Spec.Name}' was loaded for uprobe_multi, not for perf events");
        var pmuType = uint.Parse(File.ReadAllText($"{PmuDirectory}/type").Trim(), CultureInfo.InvariantCulture);
        var retprobeBit = returnProbe ? 1UL << ReadFormatBit("retprobe") : 0;
        var useLink = KernelFeatures.HasPerfEventLink;

        var fds = new List<KernelFileDescriptor>();
        try
        {
            var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
            foreach (var site in sites)
            {
                if (site.RefCtrOffset >= 1UL << 32) throw new ArgumentException($"semaphore offset 0x{site.RefCtrOffset:x} does not fit the perf uprobe format");
                if (site.Cookie != 0 && !useLink) throw new NotSupportedException("this kernel cannot pass BPF cookies to perf-event uprobes (needs 5.15)");
                KernelFileDescriptor perfFd;
                fixed (byte* pathPointer = pathBytes)
                {
                    var attr = new PerfEventAttr
                    {
                        Type = pmuType,
                        Size = PerfEventAttr.SizeVer1,
                        Config = retprobeBit | (site.RefCtrOffset << RefCtrOffsetShift),
                        Config1 = (ulong)pathPointer,
                        Config2 = site.FileOffset,
                    };
                    // The kernel wants (pid, cpu -1) for one process and (-1, cpu 0) for all; the cpu does not restrict uprobes.
                    try
                    {
                        perfFd = PerfEvent.Open(ref attr, pid == 0 ? -1 : pid, pid == 0 ? 0 : -1);
                    }
                    catch (SyscallException e) when (e.Is(Errno.EACCES) || e.Is(Errno.EPERM))
                    {
                        throw new SyscallException(e.Operation, e.Errno,
                            "perf-event uprobes need CAP_SYS_ADMIN (root) on this kernel" + (KernelFeatures.PerfEventForced
                                ? " (PYPROBE_FORCE_PERF_EVENT=1 chose them over uprobe_multi links, which need only CAP_BPF and CAP_PERFMON)"
                                : "; uprobe_multi links (Linux 6.6+), which need only CAP_BPF and CAP_PERFMON, are not usable here"));
                    }
                }
                fds.Add(perfFd);
                if (PerfEventProgramBinding.Bind(program, perfFd, useLink, site.Cookie, "linking a perf-event uprobe") is { } link) fds.Add(link);
            }
            return new PerfEventUprobeLink(fds, sites.Count);
        }
        catch
        {
            foreach (var fd in fds) fd.Dispose();
            throw;
        }
    }

    /// <summary>Reads "config:N" from the PMU's format directory.</summary>
    private static int ReadFormatBit(string name)
    {
        var text = File.ReadAllText($"{PmuDirectory}/format/{name}").Trim();
        return int.Parse(text.AsSpan(text.IndexOf(':') + 1), CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        // Links before their perf events, the reverse of creation.
        for (var i = _fds.Count - 1; i >= 0; i--) _fds[i].Dispose();
    }
}
