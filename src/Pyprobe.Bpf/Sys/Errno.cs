namespace Pyprobe.Bpf.Sys;

/// <summary>The Linux errno values pyprobe reacts to or names in its messages.</summary>
public enum Errno
{
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    EINVAL = 22,
    EMFILE = 24,
    ENOSPC = 28,
    ERANGE = 34,
    ENOSYS = 38,
    EILSEQ = 84,
    EOPNOTSUPP = 95,
    ENXIO = 6,
    ENOTSUPP = 524,
}

public static class ErrnoNames
{
    /// <summary>"EINVAL (Invalid argument)" style text; the symbolic name is what people search for.</summary>
    public static string Describe(int errno)
    {
        var name = Enum.IsDefined((Errno)errno) ? ((Errno)errno).ToString() : $"errno {errno}";
        var text = errno == (int)Errno.ENOTSUPP ? "Operation not supported by the kernel" : new System.ComponentModel.Win32Exception(errno).Message;
        return $"{name} ({text})";
    }
}
