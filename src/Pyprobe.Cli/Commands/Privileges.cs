namespace Pyprobe.Cli.Commands;

/// <summary>
/// Loading uprobe programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); saying so up front
/// beats a bare EPERM from the first bpf() call.
/// </summary>
internal static class Privileges
{
    private const int CapSysAdmin = 21, CapPerfmon = 38, CapBpf = 39;

    public static void RequireTracing(string command)
    {
        var effective = EffectiveCapabilities();
        bool Has(int capability) => (effective >> capability & 1) != 0;
        if (Has(CapSysAdmin) || (Has(CapBpf) && Has(CapPerfmon))) return;
        throw new CliException($"pyprobe {command} loads BPF programs and needs root (or the CAP_BPF and CAP_PERFMON capabilities); run it with sudo");
    }

    private static ulong EffectiveCapabilities()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                return ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return 0;
    }
}
