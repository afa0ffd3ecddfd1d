using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Features;

/// <summary>
/// Before 5.11 BPF memory was charged to RLIMIT_MEMLOCK (often 64 KiB), which fails map creation with
/// a bare EPERM. Since then it is charged to the memory cgroup and the limit does not matter.
/// </summary>
public static unsafe class MemlockLimit
{
    private const ulong Infinity = ulong.MaxValue;

    // Asked once: every session, follower and prepared map calls RemoveIfNeeded, and the test creates a map.
    private static int _memcgAccounting;

    /// <summary>Raises RLIMIT_MEMLOCK only where the kernel still uses it; returns true if it had to.</summary>
    public static bool RemoveIfNeeded()
    {
        if (Volatile.Read(ref _memcgAccounting) == 1) return false;
        RLimit current;
        if (LibC.GetRlimit(LibC.RlimitMemlock, &current) != 0 || current.Current == Infinity) return false;
        if (UsesMemcgAccounting(current))
        {
            Volatile.Write(ref _memcgAccounting, 1);
            return false;
        }
        var unlimited = new RLimit { Current = Infinity, Maximum = Infinity };
        if (LibC.SetRlimit(LibC.RlimitMemlock, &unlimited) != 0)
            throw new SyscallException("setrlimit(RLIMIT_MEMLOCK)", System.Runtime.InteropServices.Marshal.GetLastPInvokeError(),
                "this kernel charges BPF memory to the memlock limit; run as root or raise `ulimit -l`");
        return true;
    }

    /// <summary>cilium/ebpf's test: with the limit at 0, a map can only be created under memcg accounting.</summary>
    private static bool UsesMemcgAccounting(RLimit original)
    {
        var zero = new RLimit { Current = 0, Maximum = original.Maximum };
        if (LibC.SetRlimit(LibC.RlimitMemlock, &zero) != 0) return true; // cannot test; assume modern
        try
        {
            using var map = BpfMap.Create(MapSpec.Array("pyprobe_memlk", 4, 1));
            return true;
        }
        catch (SyscallException error) when (error.Is(Errno.EPERM))
        {
            return false;
        }
        finally
        {
            LibC.SetRlimit(LibC.RlimitMemlock, &original);
        }
    }
}
