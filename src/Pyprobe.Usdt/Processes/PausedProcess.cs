using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pyprobe.Usdt;

/// <summary>A thread's registers that unwinding starts from.</summary>
public readonly record struct ThreadRegisters(ulong Ip, ulong Sp, ulong Bp);

/// <summary>
/// Every thread of a process held still with ptrace (PTRACE_SEIZE, then PTRACE_INTERRUPT), so that its registers and its
/// stack can be read as one moment: what <c>dump --native</c> needs and a BPF program cannot give on demand. Nothing is
/// written into the process. <see cref="Dispose"/> lets every thread go (PTRACE_DETACH); so does the kernel if pyprobe
/// dies first. A signal the process got while held is handed back on detach rather than swallowed.
/// </summary>
public sealed partial class PausedProcess : IDisposable
{
    private const int PTRACE_GETREGS = 12, PTRACE_DETACH = 17, PTRACE_GETSIGINFO = 0x4202, PTRACE_SEIZE = 0x4206, PTRACE_INTERRUPT = 0x4207;
    private const int SIGTRAP = 5, PTRACE_EVENT_STOP = 128;
    private const int ESRCH = 3, EPERM = 1;
    private const int WNOHANG = 1, __WALL = 0x40000000;

    // struct user_regs_struct (x86-64): 27 registers, rbp 5th, rip 17th, rsp 20th.
    private const int RegisterCount = 27, RbpIndex = 4, RipIndex = 16, RspIndex = 19;

    /// <summary>How much of a stack is copied at most: glibc's default thread stack.</summary>
    public const int MaxStackBytes = 8 << 20;

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(2);

    private readonly Dictionary<int, int> _pendingSignals = [];
    private readonly List<int> _held = [];
    private readonly Dictionary<int, char> _stateBefore = [];
    private readonly long _pausedAt;
    private IReadOnlyList<ProcMapsEntry>? _maps;
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _memory;
    private long _resumedAt;

    public int Pid { get; }

    /// <summary>The threads held (the ones that existed when it was paused and did not exit meanwhile).</summary>
    public IReadOnlyList<int> Threads => _held;

    /// <summary>How long the process has been (or was) held.</summary>
    public TimeSpan Duration => Stopwatch.GetElapsedTime(_pausedAt, _resumedAt == 0 ? Stopwatch.GetTimestamp() : _resumedAt);

    private PausedProcess(int pid)
    {
        Pid = pid;
        _pausedAt = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// Holds every thread of <paramref name="pid"/>; threads started while that is under way are held too. Throws
    /// <see cref="UsdtException"/> when the process is already traced (a debugger, strace) or cannot be.
    /// </summary>
    public static PausedProcess Pause(int pid)
    {
        if (!Directory.Exists($"/proc/{pid}")) throw new ProcessNotFoundException(pid);
        var paused = new PausedProcess(pid);
        try
        {
            // Seize all first, then wait for each: the threads stop together instead of one after another.
            var seized = new List<int>();
            for (var round = 0; round < 10; round++)
            {
                var fresh = TaskState.Ids(pid).Where(t => !paused._held.Contains(t) && !seized.Contains(t)).ToList();
                if (fresh.Count == 0) break;
                foreach (var tid in fresh)
                    if (paused.Seize(tid)) seized.Add(tid);
                foreach (var tid in seized)
                    if (paused.WaitForStop(tid)) paused._held.Add(tid);
                seized.Clear();
            }
            if (paused._held.Count == 0) throw new ProcessNotFoundException(pid);
            return paused;
        }
        catch
        {
            paused.Dispose();
            throw;
        }
    }

    /// <summary>What the kernel showed of the thread (R, S, D, ...) before it was held: held, every thread shows 't'.</summary>
    public char? StateBefore(int tid) => _stateBefore.TryGetValue(tid, out var state) ? state : null;

    /// <summary>The held thread's instruction, stack and frame pointers.</summary>
    public unsafe ThreadRegisters Registers(int tid)
    {
        if (!_held.Contains(tid)) throw new ArgumentException($"thread {tid} is not held", nameof(tid));
        var registers = stackalloc ulong[RegisterCount];
        if (ptrace(PTRACE_GETREGS, tid, 0, (nint)registers) < 0)
            throw new UsdtException($"Cannot read the registers of thread {tid}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        return new ThreadRegisters(registers[RipIndex], registers[RspIndex], registers[RbpIndex]);
    }

    /// <summary>
    /// The held thread's stack from <paramref name="sp"/> up to the end of its mapping, <paramref name="maxBytes"/> at most
    /// (less where the memory cannot be read).
    /// </summary>
    public byte[] ReadStack(int tid, ulong sp, int maxBytes = MaxStackBytes)
    {
        // Held, the process maps and unmaps nothing: one reading serves every thread.
        _maps ??= ProcMaps.Read(Pid);
        var mapping = _maps.FirstOrDefault(m => sp >= m.Start && sp < m.End);
        if (mapping is null) return [];
        var count = (int)Math.Min((ulong)maxBytes, mapping.End - sp);
        var bytes = new byte[count];
        var total = 0;
        try
        {
            // One handle for every thread: they share the address space.
            _memory ??= File.OpenHandle($"/proc/{Pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            while (total < count && RandomAccess.Read(_memory, bytes.AsSpan(total), (long)sp + total) is > 0 and var n) total += n;
        }
        catch (IOException) { } // a page that cannot be read (EIO) ends the copy
        return total == count ? bytes : bytes[..total];
    }

    /// <summary>Lets every held thread go, each with the signal it was stopped for, if any.</summary>
    public void Dispose()
    {
        var threads = _held.Concat(_pendingSignals.Keys).Distinct().ToList();
        // A signal sent to the process while it was held waits in its shared queue, where no thread was ready to take it;
        // whichever thread ran first after the detach would. The kernel gives such a signal to the main thread when it
        // can, and Python runs its handlers there (one caught by another thread waits until the main thread wakes), so
        // the main thread goes first, alone, until it has taken what was queued.
        if (threads.Remove(Pid))
        {
            ptrace(PTRACE_DETACH, Pid, 0, _pendingSignals.GetValueOrDefault(Pid));
            var clock = Stopwatch.StartNew();
            while (threads.Count > 0 && SharedPendingSignals() != 0 && clock.Elapsed < MainThreadFirst) Thread.Yield();
        }
        foreach (var tid in threads)
            ptrace(PTRACE_DETACH, tid, 0, _pendingSignals.GetValueOrDefault(tid));
        _held.Clear();
        _pendingSignals.Clear();
        _memory?.Dispose();
        _memory = null;
        if (_resumedAt == 0) _resumedAt = Stopwatch.GetTimestamp();
    }

    /// <summary>How long the other threads wait for the main thread to take the signals queued while the process was held (it may block them).</summary>
    private static readonly TimeSpan MainThreadFirst = TimeSpan.FromMilliseconds(50);

    /// <summary>The process's shared pending signals (ShdPnd in /proc/PID/status), 0 when none or unknown.</summary>
    private ulong SharedPendingSignals() =>
        ulong.TryParse(StatusField(Pid, "ShdPnd:"), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var mask) ? mask : 0;

    private bool Seize(int tid)
    {
        if (TaskState.Of(Pid, tid) is not char state) return false;
        _stateBefore[tid] = state;
        if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ESRCH) return false; // exited meanwhile
            if (errno == EPERM && TracerOf(tid) is int tracer and not 0)
                throw new UsdtException($"Process {Pid} is already traced by process {tracer} ({TaskState.Name(tracer, tracer) ?? "?"}): it cannot be paused for its native stacks while that one holds it.");
            throw new UsdtException($"Cannot pause thread {tid} of process {Pid} with ptrace: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
        _pendingSignals[tid] = 0;
        if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
        {
            ptrace(PTRACE_DETACH, tid, 0, 0);
            _pendingSignals.Remove(tid);
            return false;
        }
        return true;
    }

    /// <summary>
    /// Waits until the thread is in a ptrace stop (false: it exited). Its stop is reported to this tracer (waitpid), or,
    /// where the process is a child of this one whose SIGCHLD handling (System.Diagnostics.Process) reaps the report first,
    /// seen in its state in /proc.
    /// </summary>
    private unsafe bool WaitForStop(int tid)
    {
        int status;
        var clock = Stopwatch.StartNew();
        for (var spin = 0; ; spin++)
        {
            if (waitpid(tid, (nint)(&status), WNOHANG | __WALL) == tid)
            {
                if ((status & 0xff) != 0x7f) return false; // exited or killed, not stopped
                KeepSignal(tid);
                return true;
            }
            var state = TaskState.Of(Pid, tid);
            if (state is null) return false;
            if (state == 't')
            {
                KeepSignal(tid);
                return true;
            }
            if (clock.Elapsed > StopTimeout)
                throw new UsdtException($"Thread {tid} of process {Pid} did not stop within {StopTimeout.TotalSeconds:0} s of being interrupted (state {state}).");
            if (spin < 50) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    /// <summary>
    /// A thread that took a signal between PTRACE_SEIZE and its interrupt stops for that signal instead (signal-delivery
    /// stop); detaching without it would drop the signal, so it is kept to be handed back.
    /// </summary>
    private unsafe void KeepSignal(int tid)
    {
        var info = stackalloc int[32]; // siginfo_t: 128 bytes; si_signo, si_errno, si_code
        if (ptrace(PTRACE_GETSIGINFO, tid, 0, (nint)info) < 0) return; // a group stop (SIGSTOP'd): nothing to hand back
        var interrupt = info[0] == SIGTRAP && info[2] == (SIGTRAP | PTRACE_EVENT_STOP << 8);
        if (!interrupt) _pendingSignals[tid] = info[0];
    }

    /// <summary>The process whose thread traces <paramref name="tid"/> (TracerPid names the thread), 0 for none.</summary>
    private static int? TracerOf(int tid) => StatusNumber(tid, "TracerPid:") switch
    {
        null => null,
        0 => 0,
        int tracer => StatusNumber(tracer, "Tgid:") ?? tracer,
    };

    private static int? StatusNumber(int tid, string field) =>
        int.TryParse(StatusField(tid, field), System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <summary>The value of a line of /proc/TID/status ("TracerPid:", "ShdPnd:"), trimmed; null when the thread is gone.</summary>
    private static string? StatusField(int tid, string field)
    {
        try
        {
            return File.ReadLines($"/proc/{tid}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal))?[field.Length..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long ptrace(long request, int pid, nint address, nint data);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, nint status, int options);
}
