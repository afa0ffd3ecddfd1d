using System.Runtime.InteropServices;
using Pyprobe.Bpf.Programs;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// Runs an XDP program in the kernel on the calling thread's CPU (BPF_PROG_TEST_RUN over a 64-byte packet): how the
/// tests execute generated code that is not attached anywhere. Linked into the test projects that need it.
/// </summary>
public static unsafe class XdpTestRun
{
    /// <summary>BPF_PROG_TYPE_XDP: a type BPF_PROG_TEST_RUN runs with a packet.</summary>
    public const ProgramType Type = (ProgramType)6;

    private const int BpfProgTestRun = 10;

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, long command, long attr, long size);

    /// <summary>Runs <paramref name="programFd"/> <paramref name="repeat"/> times; fails the test if the kernel refuses.</summary>
    public static void Run(int programFd, uint repeat = 1)
    {
        var packet = stackalloc byte[64];
        var attr = stackalloc byte[80];
        new Span<byte>(attr, 80).Clear();
        *(uint*)attr = (uint)programFd;
        *(uint*)(attr + 8) = 64;
        *(ulong*)(attr + 16) = (ulong)packet;
        *(uint*)(attr + 32) = repeat;
        var result = Syscall(321 /* bpf, x86-64 */, BpfProgTestRun, (long)attr, 80);
        Assert.True(result >= 0, $"BPF_PROG_TEST_RUN failed: errno {Marshal.GetLastPInvokeError()}");
    }
}
