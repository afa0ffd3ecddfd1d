using System.Runtime.InteropServices;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// Loading uprobe programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); saying so up front
/// beats a bare EPERM from the first bpf() call.
/// </summary>
internal static unsafe partial class Privileges
{
    private const int CapSysAdmin = 21, CapPerfmon = 38, CapBpf = 39;
    // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set, for capabilities 0-63.
    private const uint CapabilityVersion3 = 0x20080522;

    public static void RequireTracing(string command)
    {
        var effective = EffectiveCapabilities();
        bool Has(int capability) => (effective >> capability & 1) != 0;
        if (Has(CapSysAdmin) || (Has(CapBpf) && Has(CapPerfmon))) return;
        throw new CliException($"pyprobe {command} loads BPF programs and needs root (or the CAP_BPF and CAP_PERFMON capabilities); run it with sudo");
    }

    /// <summary>This thread's effective set, asked of the kernel (capget): reading /proc/self/status line by line cost ~0.5 ms of every launch.</summary>
    internal static ulong EffectiveCapabilities()
    {
        var header = stackalloc uint[2] { CapabilityVersion3, 0 /* this thread */ };
        // Two struct __user_cap_data_struct { effective, permitted, inheritable }: the low and high 32 capabilities.
        var data = stackalloc uint[6];
        if (CapGet(header, data) != 0) return 0;
        return data[0] | (ulong)data[3] << 32;
    }

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int CapGet(uint* header, uint* data);
}
