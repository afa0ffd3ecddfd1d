using System.Runtime.InteropServices;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.RingBuffer;

/// <summary>
/// epoll on a ring buffer's map fd plus an eventfd, so another thread can wake the reader without waiting for a
/// timeout. The map is watched edge-triggered: the ring's poll reports readable whenever any record is pending, so
/// level-triggered, a wait with a few records pending would return at once and the reader could never sleep until
/// the producers' next wakeup. A wakeup that comes while nobody waits ends the next wait, if records are still pending
/// then (epoll polls the ring again before it reports it).
/// </summary>
internal sealed unsafe class WakeupPoller : IDisposable
{
    private const ulong MapToken = 1;
    private const ulong InterruptToken = 2;

    private readonly KernelFileDescriptor _epoll;
    private readonly KernelFileDescriptor _interrupt;

    public WakeupPoller(KernelFileDescriptor watched)
    {
        _epoll = Create(LibC.EpollCreate1(LibC.EpollCloexec), "epoll_create1");
        _interrupt = Create(LibC.EventFd(0, LibC.EfdCloexec | LibC.EfdNonBlock), "eventfd");
        Add(watched, MapToken, LibC.EpollIn | LibC.EpollEdgeTriggered);
        Add(_interrupt, InterruptToken, LibC.EpollIn);
    }

    /// <summary>Returns true when the watched fd is readable; false on timeout or interrupt.</summary>
    public bool Wait(int timeoutMs)
    {
        var events = stackalloc EpollEvent[2];
        while (true)
        {
            var count = LibC.EpollWait(_epoll.Value, events, 2, timeoutMs);
            if (count < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == (int)Errno.EINTR) continue;
                throw new SyscallException("epoll_wait", errno);
            }
            var readable = false;
            for (var i = 0; i < count; i++)
            {
                if (events[i].Data == InterruptToken)
                {
                    ulong drained;
                    LibC.Read(_interrupt.Value, &drained, sizeof(ulong));
                }
                else readable = true;
            }
            return readable;
        }
    }

    public void Interrupt()
    {
        ulong one = 1;
        LibC.Write(_interrupt.Value, &one, sizeof(ulong));
    }

    private void Add(KernelFileDescriptor fd, ulong token, uint events)
    {
        var evt = new EpollEvent { Events = events, Data = token };
        if (LibC.EpollCtl(_epoll.Value, LibC.EpollCtlAdd, fd.Value, &evt) != 0)
            throw new SyscallException("epoll_ctl(ADD)", Marshal.GetLastPInvokeError());
    }

    private static KernelFileDescriptor Create(int fd, string what)
        => fd >= 0 ? KernelFileDescriptor.Own(fd) : throw new SyscallException(what, Marshal.GetLastPInvokeError());

    public void Dispose()
    {
        _interrupt.Dispose();
        _epoll.Dispose();
    }
}
