using Pyprobe.Bpf.Sys;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// Loading uprobe programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); saying so up front
/// beats a bare EPERM from the first bpf() call.
/// </summary>
internal static class Privileges
{
    public static void RequireTracing(string command)
    {
        var effective = Capabilities.Effective();
        bool Has(int capability) => (effective >> capability & 1) != 0;
        if (Has(Capabilities.SysAdmin) || (Has(Capabilities.Bpf) && Has(Capabilities.Perfmon))) return;
        throw new CliException($"pyprobe {command} loads BPF programs and needs root (or the CAP_BPF and CAP_PERFMON capabilities); run it with sudo");
    }
}
