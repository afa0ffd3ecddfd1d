using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Launch;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// Takes the kernel's wait for an RCU grace period off the attach path. Registering a uprobe write-locks the kernel's
/// <c>dup_mmap_sem</c>, a per-CPU rw-semaphore whose first writer waits a full RCU grace period (rcu_sync_enter);
/// measured on 6.18 that wait is 8–11 ms of a 9–11 ms BPF_LINK_CREATE, most of pyprobe's time from launch to
/// probes live. A writer that comes within a grace period after another one does not wait again. So a command that
/// will attach uprobes starts, at launch, one throwaway registration on a background thread — a uprobe_multi link of an
/// empty program on an anonymous memfd nobody maps, filtered to pyprobe itself, closed at once — and the grace period
/// passes while pyprobe parses its arguments and the target's ELF file; the real link then finds the semaphore warm.
/// </summary>
/// <remarks>
/// Nothing outside pyprobe is touched: the memfd has no mapping, so no breakpoint is written anywhere, and every
/// uprobe attach takes the same lock for the same time. On failure (no uprobe_multi, no privileges) it does nothing:
/// the real attach then waits as before and reports its own errors.
/// </remarks>
public static class UprobeRegistrationWarmup
{
    private static int _started;

    /// <summary>The empty program's name (BPF object names are cut at 15 characters).</summary>
    public const string ProgramName = "py_warmup";

    /// <summary>
    /// Starts the throwaway registration once per process, in the background, then probes the kernel's other features
    /// there too (<see cref="KernelFeatures.ProbeAhead"/>). The registration goes first, after the one question it needs
    /// (whether uprobe_multi works): the grace period it waits for bounds the launch, and the sooner it starts the
    /// sooner it ends; the attaching thread reaches its own link well before it ends, and answers any question the
    /// warm-up has not answered yet itself, in time it would otherwise spend waiting for that grace period.
    /// </summary>
    public static void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        UnwaitedThread.Start(() =>
        {
            Ask(() => KernelFeatures.ProbeUprobeMultiAhead(keepEmptyProgram: true));
            RegisterAndRelease();
            Ask(KernelFeatures.ProbeAhead);
        }, "pyprobe warm-up");
    }

    /// <summary>Asks the kernel-feature questions <paramref name="questions"/> asks, ahead of the attach; a failure is left for the attach to meet.</summary>
    private static void Ask(Action questions)
    {
        try
        {
            questions();
        }
        catch (Exception e) when (e is SyscallException or IOException or UnauthorizedAccessException)
        {
            // The attach asks again and reports what it must.
        }
    }

    /// <summary>The throwaway registration itself, synchronously; false when it could not be made (nothing is left either way).</summary>
    public static bool RegisterAndRelease()
    {
        var memfd = -1;
        try
        {
            if (!KernelFeatures.HasUprobeMulti) return false;
            memfd = LibC.MemfdCreate("pyprobe-uprobe-warmup", LibC.MfdCloexec);
            // A uprobe's offset must lie inside the file.
            if (memfd < 0 || LibC.Ftruncate(memfd, 4096) != 0) return false;
            using var program = KernelFeatures.TakeEmptyUprobeMultiProgram()
                ?? BpfProgram.Load(new ProgramSpec(ProgramName, ProgramType.Kprobe, KernelFeatures.ReturnZero, AttachType.TraceUprobeMulti));
            using var link = UprobeMultiLink.Attach(program, $"/proc/self/fd/{memfd}", [new UprobeSite(0)], Environment.ProcessId);
            return true;
        }
        catch (Exception e) when (e is SyscallException or IOException or UnauthorizedAccessException)
        {
            // Only a head start: the real attach does the same registration and reports its own errors.
            return false;
        }
        finally
        {
            if (memfd >= 0) LibC.Close(memfd);
        }
    }
}
