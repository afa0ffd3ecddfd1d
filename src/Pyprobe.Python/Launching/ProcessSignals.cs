using System.Runtime.InteropServices;

namespace Pyprobe.Python.Launching;

/// <summary>kill(2), for resuming a held child and for checking that a process still exists.</summary>
internal static partial class ProcessSignals
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public static bool Send(int pid, int signal) => Kill(pid, signal) == 0;
}
