using System.Runtime.InteropServices;
using System.Text;

namespace Pyprobe.Bpf.Sys;

/// <summary>What a path names, from statx(2) (its layout is the same on every architecture), following symlinks.</summary>
public static unsafe class FileKind
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 1;
    private const int ModeOffset = 28; // struct statx: stx_mask, stx_blksize, stx_attributes, stx_nlink, stx_uid, stx_gid, then stx_mode
    private const int TypeMask = 0xF000, Regular = 0x8000;

    private static long StatxNumber => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 291 : 332;

    /// <summary>
    /// True when <paramref name="path"/> exists and is neither a regular file nor a directory: a character or block
    /// device (/dev/null, a terminal), a FIFO or a socket — a file to write into, never to replace.
    /// </summary>
    public static bool IsSpecial(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        var buffer = stackalloc byte[256];
        fixed (byte* name = bytes)
        {
            if (LibC.Syscall(StatxNumber, AtFdCwd, (long)name, 0, StatxType, (long)buffer) != 0) return false;
        }
        var type = *(ushort*)(buffer + ModeOffset) & TypeMask;
        return type != Regular && type != 0x4000;
    }
}
