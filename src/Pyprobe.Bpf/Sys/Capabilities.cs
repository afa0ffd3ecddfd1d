using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys;

/// <summary>The capabilities this thread holds, and what a refusal to read another process means with them.</summary>
public static unsafe partial class Capabilities
{
    public const int SysPtrace = 19, SysAdmin = 21, Perfmon = 38, Bpf = 39;
    // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set, for capabilities 0-63.
    private const uint Version3 = 0x20080522;

    /// <summary>This thread's effective set, asked of the kernel (capget): reading /proc/self/status line by line cost ~0.5 ms of every launch.</summary>
    public static ulong Effective()
    {
        var header = stackalloc uint[2] { Version3, 0 /* this thread */ };
        // Two struct __user_cap_data_struct { effective, permitted, inheritable }: the low and high 32 capabilities.
        var data = stackalloc uint[6];
        if (CapGet(header, data) != 0) return 0;
        return data[0] | (ulong)data[3] << 32;
    }

    public static bool Has(int capability) => (Effective() >> capability & 1) != 0;

    /// <summary>
    /// Why the kernel may have refused to let pyprobe <paramref name="doing"/> another process, in parentheses: without
    /// CAP_SYS_PTRACE, the capability; with it (root), what still refuses it — a security module, or a process another
    /// user namespace owns.
    /// </summary>
    public static string ProcessAccessHint(string doing) => Has(SysPtrace)
        ? "(pyprobe has CAP_SYS_PTRACE: something else refuses it here — a security module, or a process another user namespace owns)"
        : $"({doing} needs root or CAP_SYS_PTRACE)";

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int CapGet(uint* header, uint* data);
}
