using System.Runtime.InteropServices;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// What a BPF sampler would send for a stopped thread, taken with ptrace instead: rip, rsp and rbp
/// (PTRACE_GETREGS once PTRACE_SEIZE + PTRACE_INTERRUPT have stopped it) and the bytes from rsp up, read from /proc/PID/mem, before
/// the thread is let go (PTRACE_DETACH). Every call is made from the calling thread, which is the tracer.
/// </summary>
public static partial class PtraceRegisters
{
    private const int PTRACE_GETREGS = 12, PTRACE_DETACH = 17, PTRACE_SEIZE = 0x4206, PTRACE_INTERRUPT = 0x4207;

    // struct user_regs_struct (x86-64): 27 registers, rbp 5th, rip 17th, rsp 20th.
    private const int RegisterCount = 27, RbpIndex = 4, RipIndex = 16, RspIndex = 19;

    [LibraryImport("libc", SetLastError = true)]
    private static partial long ptrace(long request, int pid, nint address, nint data);

    /// <summary>
    /// Polls the thread's state until it shows the ptrace stop ('t'). Not waitpid: the test's processes are children
    /// of the test host, whose SIGCHLD handler (System.Diagnostics.Process) reaps their status changes, stops included,
    /// so a waitpid here would wait forever.
    /// </summary>
    private static void WaitUntilStopped(int tid)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            var stat = File.ReadAllText($"/proc/{tid}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('t')) return;
            Thread.Sleep(1);
        }
        throw new TimeoutException($"thread {tid} did not stop for ptrace");
    }

    public sealed record Snapshot(ulong Ip, ulong Sp, ulong Bp, byte[] Stack);

    /// <summary>Stops thread <paramref name="tid"/>, takes its registers and up to <paramref name="stackBytes"/> of its stack, and resumes it.</summary>
    public static unsafe Snapshot Take(int tid, int stackBytes)
    {
        Check(ptrace(PTRACE_SEIZE, tid, 0, 0), "PTRACE_SEIZE");
        try
        {
            Check(ptrace(PTRACE_INTERRUPT, tid, 0, 0), "PTRACE_INTERRUPT");
            WaitUntilStopped(tid);
            var registers = stackalloc ulong[RegisterCount];
            Check(ptrace(PTRACE_GETREGS, tid, 0, (nint)registers), "PTRACE_GETREGS");
            var sp = registers[RspIndex];
            return new Snapshot(registers[RipIndex], sp, registers[RbpIndex], ReadStack(tid, sp, stackBytes));
        }
        finally
        {
            ptrace(PTRACE_DETACH, tid, 0, 0);
        }
    }

    /// <summary>As much of [sp, sp + count) as is mapped: a read stops at the end of the stack's mapping.</summary>
    private static byte[] ReadStack(int tid, ulong sp, int count)
    {
        using var memory = new FileStream($"/proc/{tid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        memory.Position = (long)sp;
        var bytes = new byte[count];
        var total = 0;
        try
        {
            while (total < count && memory.Read(bytes, total, count - total) is > 0 and var n) total += n;
        }
        catch (IOException) { } // EIO past the mapping's end
        return bytes[..total];
    }

    private static void Check(long result, string what)
    {
        if (result < 0) throw new InvalidOperationException($"{what}: errno {Marshal.GetLastPInvokeError()}");
    }
}
