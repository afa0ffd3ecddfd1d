using System.Runtime.InteropServices;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Sys;

/// <summary>perf_event_open(2) and the ioctls the uprobe fallback and the CPU-clock sampler use.</summary>
public static unsafe class PerfEvent
{
    private const long SysPerfEventOpenX64 = 298;
    private const long SysPerfEventOpenArm64 = 241;
    private const long FlagFdCloexec = 8;

    public const ulong IocEnable = 0x2400;
    public const ulong IocDisable = 0x2401;
    public const ulong IocSetBpf = 0x40042408;

    public static KernelFileDescriptor Open(ref PerfEventAttr attr, int pid, int cpu, string what = "uprobe")
    {
        var number = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? SysPerfEventOpenArm64 : SysPerfEventOpenX64;
        fixed (PerfEventAttr* pointer = &attr)
        {
            while (true)
            {
                var fd = LibC.Syscall(number, (long)pointer, pid, cpu, -1, FlagFdCloexec);
                if (fd >= 0) return KernelFileDescriptor.Own((int)fd);
                var errno = Marshal.GetLastPInvokeError();
                if (errno == (int)Errno.EINTR) continue;
                throw new SyscallException($"perf_event_open({what})", errno);
            }
        }
    }

    public static void Ioctl(KernelFileDescriptor fd, ulong request, nint argument, string what)
    {
        if (LibC.Ioctl(fd.Value, request, argument) < 0)
            throw new SyscallException($"ioctl({what})", Marshal.GetLastPInvokeError());
    }
}
