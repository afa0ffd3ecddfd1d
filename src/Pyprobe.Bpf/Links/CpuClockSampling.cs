using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// A perf-event program run on a timer: one <c>PERF_COUNT_SW_CPU_CLOCK</c> event per online CPU for every task
/// (pid −1), in frequency mode, each bound to the program by a BPF perf link (5.15+) or, before that,
/// <c>PERF_EVENT_IOC_SET_BPF</c> + <c>ENABLE</c>. Disposing closes links and events, which stops the sampling.
/// </summary>
/// <remarks>
/// The CPU clock is an hrtimer, so it fires on idle CPUs too (the program sees the idle task, pid 0) and needs no
/// hardware PMU (VMs have none). In frequency mode the kernel turns the rate into a fixed period for this event type.
/// </remarks>
public sealed class CpuClockSampling : IDisposable
{
    private readonly List<KernelFileDescriptor> _fds;

    private CpuClockSampling(List<KernelFileDescriptor> fds, IReadOnlyList<int> cpus, int frequency)
    {
        _fds = fds;
        Cpus = cpus;
        Frequency = frequency;
    }

    /// <summary>The CPUs an event was opened on.</summary>
    public IReadOnlyList<int> Cpus { get; }

    /// <summary>Samples per second per CPU.</summary>
    public int Frequency { get; }

    /// <param name="program">Loaded as <see cref="ProgramType.PerfEvent"/>.</param>
    /// <param name="frequency">Samples per second per CPU (e.g. 99, 999).</param>
    /// <exception cref="SyscallException">perf_event_open or the attach failed (needs CAP_PERFMON, or root).</exception>
    public static CpuClockSampling Attach(BpfProgram program, int frequency)
    {
        if (program.Spec.Type != ProgramType.PerfEvent)
            throw new ArgumentException($"program '{program.Spec.Name}' is a {program.Spec.Type} program; CPU-clock sampling runs perf-event programs");
        ArgumentOutOfRangeException.ThrowIfLessThan(frequency, 1);
        var cpus = CpuList.Online;
        var useLink = KernelFeatures.HasPerfEventLink;
        var fds = new List<KernelFileDescriptor>();
        try
        {
            foreach (var cpu in cpus)
            {
                var attr = new PerfEventAttr
                {
                    Type = PerfEventAttr.TypeSoftware,
                    Size = PerfEventAttr.SizeVer1,
                    Config = PerfEventAttr.SoftwareCpuClock,
                    SamplePeriod = (ulong)frequency,
                    Flags = PerfEventAttr.FlagFrequency,
                };
                var perfFd = PerfEvent.Open(ref attr, pid: -1, cpu, "cpu-clock");
                fds.Add(perfFd);
                if (PerfEventProgramBinding.Bind(program, perfFd, useLink, cookie: 0, $"linking the cpu-clock event of CPU {cpu}") is { } link) fds.Add(link);
            }
            return new CpuClockSampling(fds, cpus, frequency);
        }
        catch
        {
            for (var i = fds.Count - 1; i >= 0; i--) fds[i].Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        // Links before their perf events, the reverse of creation.
        for (var i = _fds.Count - 1; i >= 0; i--) _fds[i].Dispose();
        _fds.Clear();
    }
}
