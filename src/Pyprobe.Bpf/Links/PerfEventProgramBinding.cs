using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// Runs a program on a perf event's overflow: a BPF perf link (5.15+; carries the BPF cookie) or, on older kernels,
/// <c>PERF_EVENT_IOC_SET_BPF</c> + <c>ENABLE</c> on the event itself. Uprobe events and CPU-clock events share it.
/// </summary>
internal static class PerfEventProgramBinding
{
    /// <summary>Binds <paramref name="program"/> to <paramref name="perfEvent"/>; returns the link fd, or null when the ioctl path was used.</summary>
    public static KernelFileDescriptor? Bind(BpfProgram program, KernelFileDescriptor perfEvent, bool useLink, ulong cookie, string what)
    {
        if (!useLink)
        {
            PerfEvent.Ioctl(perfEvent, PerfEvent.IocSetBpf, program.Fd.Value, "PERF_EVENT_IOC_SET_BPF");
            PerfEvent.Ioctl(perfEvent, PerfEvent.IocEnable, 0, "PERF_EVENT_IOC_ENABLE");
            return null;
        }
        var link = new LinkCreatePerfEventAttr
        {
            ProgFd = (uint)program.Fd.Value,
            TargetFd = (uint)perfEvent.Value,
            AttachType = (uint)AttachType.PerfEvent,
            BpfCookie = cookie,
        };
        return BpfSyscall.CreateFd(BpfCommand.LinkCreate, ref link, what);
    }
}
