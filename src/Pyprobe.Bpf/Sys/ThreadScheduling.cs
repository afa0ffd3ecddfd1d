using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys;

/// <summary>The scheduling policies pyprobe asks for (sched(7)).</summary>
public enum SchedulingPolicy
{
    /// <summary>SCHED_OTHER: the normal time-shared policy, weighted by the nice value.</summary>
    Normal = 0,

    /// <summary>SCHED_FIFO: runs ahead of every normal thread until it blocks.</summary>
    Fifo = 1,
}

/// <summary>
/// Scheduling of single threads of this process, by kernel thread id: the nice value and the policy are per-thread
/// attributes on Linux, so raising one thread touches no other thread and no other process.
/// </summary>
public static class ThreadScheduling
{
    /// <summary>SCHED_RESET_ON_FORK: whatever this thread creates (threads, processes) starts at the normal policy and nice 0.</summary>
    private const int ResetOnFork = 0x40000000;

    /// <summary>The kernel id of the calling thread (gettid(2); not the managed thread id).</summary>
    public static int CurrentThreadId() => LibC.GetThreadId();

    /// <summary>
    /// Puts thread <paramref name="tid"/> under <paramref name="policy"/> (<paramref name="priority"/>: 1-99 for
    /// <see cref="SchedulingPolicy.Fifo"/>, 0 for <see cref="SchedulingPolicy.Normal"/>), with reset-on-fork so
    /// nothing it starts inherits a raised priority. A negative nice or a real-time policy needs CAP_SYS_NICE.
    /// </summary>
    public static void SetPolicy(int tid, SchedulingPolicy policy, int priority)
    {
        if (LibC.SchedSetScheduler(tid, (int)policy | ResetOnFork, priority) != 0)
            throw new SyscallException("sched_setscheduler", Marshal.GetLastPInvokeError());
    }

    /// <summary>Sets the nice value (-20 to 19) of thread <paramref name="tid"/> (setpriority(2) with PRIO_PROCESS and a thread id).</summary>
    public static void SetNice(int tid, int nice)
    {
        if (LibC.SetPriority(LibC.PrioProcess, tid, nice) != 0)
            throw new SyscallException("setpriority", Marshal.GetLastPInvokeError());
    }

    /// <summary>The nice value of thread <paramref name="tid"/> (getpriority(2); -1 is a valid answer, so errno decides).</summary>
    public static int GetNice(int tid)
    {
        var nice = LibC.GetPriority(LibC.PrioProcess, tid);
        if (nice == -1 && Marshal.GetLastPInvokeError() is var errno and not 0)
            throw new SyscallException("getpriority", errno);
        return nice;
    }
}
