using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Tests.Sys;

/// <summary>A thread that spins until disposed, and what the kernel knows of it: its tid and (x86-64) fsbase.</summary>
internal sealed unsafe partial class BusyThread : IDisposable
{
    private const int ArchGetFs = 0x1003;
    private const long SysArchPrctl = 158;
    private volatile bool _stop;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _started = new();

    public BusyThread()
    {
        _thread = new Thread(Spin) { IsBackground = true, Name = "busy" };
        _thread.Start();
        _started.Wait();
    }

    public int Tid { get; private set; }

    /// <summary>The thread's fsbase as arch_prctl(ARCH_GET_FS) reports it in the thread itself.</summary>
    public ulong FsBase { get; private set; }

    private void Spin()
    {
        Tid = GetTid();
        ulong fs = 0;
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64 && Syscall(SysArchPrctl, ArchGetFs, (long)&fs) != 0)
            throw new InvalidOperationException($"arch_prctl(ARCH_GET_FS) failed: errno {Marshal.GetLastPInvokeError()}");
        FsBase = fs;
        _started.Set();
        var x = 0UL;
        while (!_stop) x = x * 6364136223846793005UL + 1;
        GC.KeepAlive(x);
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
        _started.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2);
}
