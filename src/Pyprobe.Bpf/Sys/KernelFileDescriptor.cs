using Microsoft.Win32.SafeHandles;

namespace Pyprobe.Bpf.Sys;

/// <summary>
/// A file descriptor owned by pyprobe: a BPF map, program or link, a perf event, an epoll instance.
/// Closing it is what detaches a probe, so every fd lives in one of these and is released exactly once.
/// </summary>
public sealed class KernelFileDescriptor : SafeHandleZeroOrMinusOneIsInvalid
{
    private KernelFileDescriptor(int fd) : base(ownsHandle: true) => SetHandle(fd);

    public int Value => IsClosed ? throw new ObjectDisposedException(nameof(KernelFileDescriptor)) : (int)handle;

    /// <summary>
    /// Takes ownership of a fresh fd. fd 0 is moved above 0 (close-on-exec) because BPF attributes use
    /// 0 to mean "no fd"; that only happens when a caller closed stdin.
    /// </summary>
    public static KernelFileDescriptor Own(int fd)
    {
        if (fd != 0) return new KernelFileDescriptor(fd);
        var moved = LibC.Fcntl(fd, LibC.FdCloexecDup, 1);
        var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        LibC.Close(fd);
        if (moved < 0) throw new SyscallException("fcntl(F_DUPFD_CLOEXEC)", errno);
        return new KernelFileDescriptor(moved);
    }

    protected override bool ReleaseHandle() => LibC.Close((int)handle) == 0;
}
