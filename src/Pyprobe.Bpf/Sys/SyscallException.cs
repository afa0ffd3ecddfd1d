namespace Pyprobe.Bpf.Sys;

/// <summary>A failed system call, with the errno kept so callers can react to specific failures.</summary>
public class SyscallException : Exception
{
    public SyscallException(string operation, int errno, string? detail = null)
        : base($"{operation} failed: {ErrnoNames.Describe(errno)}{(detail is null ? "" : ": " + detail)}")
    {
        Operation = operation;
        Errno = errno;
    }

    public string Operation { get; }
    public int Errno { get; }
    public bool Is(Errno errno) => Errno == (int)errno;
}
