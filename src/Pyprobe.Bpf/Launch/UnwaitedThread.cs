using System.Runtime.InteropServices;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Launch;

/// <summary>
/// Starts work on a new thread without waiting for that thread to run. <see cref="Thread.Start()"/> returns only once the
/// new thread has started, and on a VM whose other vCPU is idle that means waking it (an IPI the host must deliver):
/// 0.5-2.3 ms of the launching thread's time here, for each of the threads a launch starts. A POSIX thread whose start
/// routine is managed code is attached to the runtime when it enters it, on its own time.
/// </summary>
public static unsafe class UnwaitedThread
{
    /// <summary>Runs <paramref name="work"/> on a new background thread named <paramref name="name"/> (at most 15 bytes: the kernel's limit).</summary>
    /// <remarks>
    /// <paramref name="work"/> must handle its own failures: one that escapes is dropped here (an exception must not leave
    /// a native thread's start routine). Where no thread can be made this way, a managed one is started instead.
    /// </remarks>
    public static void Start(Action work, string name)
    {
        var handle = GCHandle.Alloc(new Started(work, name));
        nint thread;
        if (LibC.PthreadCreate(&thread, 0, &Run, GCHandle.ToIntPtr(handle)) == 0)
        {
            LibC.PthreadDetach(thread);
            return;
        }
        handle.Free();
        new Thread(() => Guarded(work)) { IsBackground = true, Name = name }.Start();
    }

    private sealed record Started(Action Work, string Name);

    [UnmanagedCallersOnly]
    private static nint Run(nint argument)
    {
        var handle = GCHandle.FromIntPtr(argument);
        var started = (Started)handle.Target!;
        handle.Free();
        LibC.NameThisThread(started.Name);
        Guarded(started.Work);
        return 0;
    }

    private static void Guarded(Action work)
    {
        try
        {
            work();
        }
        catch (Exception)
        {
            // Launch work done ahead of need: whoever needs its result does the work again and reports what fails.
        }
    }
}
