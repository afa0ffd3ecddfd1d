using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys;

/// <summary>
/// The only native code pyprobe calls: libc's thin syscall wrappers. "libc" (not "libc.so") lets the
/// runtime pick the right soname on glibc; "libc.so" would hit the linker script (dotnet/runtime#57904).
/// </summary>
internal static unsafe partial class LibC
{
    private const string Library = "libc";

    // syscall(2) is variadic, but passing only integer-class arguments is ABI-safe on x86-64 and arm64.
    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3);

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(Library, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, ulong request, nint argument);

    [LibraryImport(Library, EntryPoint = "mmap", SetLastError = true)]
    internal static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Library, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(void* address, nuint length);

    [LibraryImport(Library, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport(Library, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int EpollCreate1(int flags);

    [LibraryImport(Library, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static partial int EpollCtl(int epollFd, int operation, int fd, EpollEvent* evt);

    [LibraryImport(Library, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static partial int EpollWait(int epollFd, EpollEvent* events, int maxEvents, int timeoutMs);

    [LibraryImport(Library, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initialValue, int flags);

    [LibraryImport(Library, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport(Library, EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport(Library, EntryPoint = "pthread_create")]
    internal static partial int PthreadCreate(nint* thread, nint attributes, delegate* unmanaged<nint, nint> start, nint argument);

    [LibraryImport(Library, EntryPoint = "pthread_detach")]
    internal static partial int PthreadDetach(nint thread);

    [LibraryImport(Library, EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, byte* name, nint unused3, nint unused4, nint unused5);

    /// <summary>Names the calling thread (PR_SET_NAME; the kernel keeps 15 bytes), as ps and /proc/PID/task show it.</summary>
    internal static void NameThisThread(string name)
    {
        var bytes = stackalloc byte[16];
        var length = System.Text.Encoding.ASCII.GetBytes(name.AsSpan(0, Math.Min(name.Length, 15)), new Span<byte>(bytes, 15));
        bytes[length] = 0;
        Prctl(15 /* PR_SET_NAME */, bytes, 0, 0, 0);
    }

    [LibraryImport(Library, EntryPoint = "getrlimit", SetLastError = true)]
    internal static partial int GetRlimit(int resource, RLimit* limit);

    [LibraryImport(Library, EntryPoint = "setrlimit", SetLastError = true)]
    internal static partial int SetRlimit(int resource, RLimit* limit);

    [LibraryImport(Library, EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int MemfdCreate(string name, uint flags);

    [LibraryImport(Library, EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);

    [LibraryImport(Library, EntryPoint = "getpagesize")]
    internal static partial int GetPageSize();

    [LibraryImport(Library, EntryPoint = "geteuid")]
    internal static partial uint GetEffectiveUserId();

    [LibraryImport(Library, EntryPoint = "gettid")]
    internal static partial int GetThreadId();

    [LibraryImport(Library, EntryPoint = "setpriority", SetLastError = true)]
    internal static partial int SetPriority(int which, int who, int niceValue);

    [LibraryImport(Library, EntryPoint = "getpriority", SetLastError = true)]
    internal static partial int GetPriority(int which, int who);

    [LibraryImport(Library, EntryPoint = "sched_setscheduler", SetLastError = true)]
    internal static partial int SchedSetScheduler(int pid, int policy, in int priority);

    internal const int FdCloexecDup = 1030; // F_DUPFD_CLOEXEC
    internal const int ProtRead = 1, ProtWrite = 2;
    internal const int MapShared = 1, MapPrivate = 2, MapAnonymous = 0x20;
    internal const int MadviseHugePage = 14; // MADV_HUGEPAGE
    internal static readonly void* MapFailed = (void*)-1;
    internal const int EpollCloexec = 0x80000; // EPOLL_CLOEXEC == O_CLOEXEC
    internal const int EpollCtlAdd = 1;
    internal const uint EpollIn = 1;
    internal const uint EpollEdgeTriggered = 1u << 31; // EPOLLET
    internal const int EfdCloexec = 0x80000, EfdNonBlock = 0x800;
    internal const int RlimitMemlock = 8;
    internal const uint MfdCloexec = 1;
    internal const int PrioProcess = 0; // PRIO_PROCESS: with a thread id, that one thread
}

/// <summary>struct epoll_event is packed to 12 bytes on x86-64 (and padded to 16 on arm64).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
internal struct EpollEvent
{
    public uint Events;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
internal struct RLimit
{
    public ulong Current;
    public ulong Maximum;
}
