using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Tests.Sys;

internal static partial class LibCProbe
{
    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    public static uint EffectiveUserId => GetEffectiveUserId();
}
