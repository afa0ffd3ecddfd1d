using System.Runtime.InteropServices;

namespace Pyprobe.Bpf.Sys;

/// <summary>The bpf(2) system call with the retries every caller needs.</summary>
public static unsafe class BpfSyscall
{
    private const long SysBpfX64 = 321;
    private const long SysBpfArm64 = 280;

    internal static long Number => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? SysBpfArm64 : SysBpfX64;

    /// <summary>
    /// Calls bpf(cmd, attr, size). EINTR is retried for every command and EAGAIN for PROG_LOAD: the
    /// verifier can be interrupted by signals, and the .NET runtime signals its own threads (GC suspension).
    /// Returns the non-negative result or the errno as a negative number.
    /// </summary>
    public static long Invoke<TAttr>(BpfCommand command, ref TAttr attr) where TAttr : unmanaged
    {
        fixed (TAttr* pointer = &attr)
        {
            for (var attempt = 0; ; attempt++)
            {
                var result = LibC.Syscall(Number, (long)command, (long)pointer, sizeof(TAttr));
                if (result >= 0) return result;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == (int)Errno.EINTR && attempt < 1000) continue;
                if (errno == (int)Errno.EAGAIN && command == BpfCommand.ProgLoad && attempt < 1000) continue;
                return -errno;
            }
        }
    }

    /// <summary>Like <see cref="Invoke{TAttr}"/> but throws <see cref="SyscallException"/> on failure.</summary>
    public static long InvokeOrThrow<TAttr>(BpfCommand command, ref TAttr attr, string? detail = null) where TAttr : unmanaged
        => InvokeOrThrow(command, ref attr, detail, static d => d);

    /// <summary>
    /// Like <see cref="InvokeOrThrow{TAttr}"/> with the failure's detail made only when it fails: a detail that formats an
    /// enum costs a reflection lookup on its first use, and calls that succeed (nearly all) should not pay for words.
    /// </summary>
    public static long InvokeOrThrow<TAttr, TState>(BpfCommand command, ref TAttr attr, TState state, Func<TState, string?> detail) where TAttr : unmanaged
    {
        var result = Invoke(command, ref attr);
        if (result < 0) throw new SyscallException($"bpf({command})", (int)-result, detail(state));
        return result;
    }

    /// <summary>Runs a command that returns a new fd and wraps it.</summary>
    public static KernelFileDescriptor CreateFd<TAttr>(BpfCommand command, ref TAttr attr, string? detail = null) where TAttr : unmanaged
        => KernelFileDescriptor.Own((int)InvokeOrThrow(command, ref attr, detail));

    /// <summary>Runs a command that returns a new fd and wraps it; the failure's detail is made only on failure.</summary>
    public static KernelFileDescriptor CreateFd<TAttr, TState>(BpfCommand command, ref TAttr attr, TState state, Func<TState, string?> detail) where TAttr : unmanaged
        => KernelFileDescriptor.Own((int)InvokeOrThrow(command, ref attr, state, detail));
}
