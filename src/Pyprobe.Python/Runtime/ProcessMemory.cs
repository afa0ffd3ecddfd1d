using Pyprobe.Bpf.Sys;
using Microsoft.Win32.SafeHandles;

namespace Pyprobe.Python.Runtime;

/// <summary>A read of another process's memory failed (unmapped address, process gone).</summary>
public sealed class ProcessMemoryException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// Read-only access to a process's memory through /proc/PID/mem (opened for reading only: nothing is
/// ever written to the target). Reads are bounded by the caller.
/// </summary>
public sealed class ProcessMemory : IMemoryReader, IDisposable
{
    private readonly SafeFileHandle _handle;

    private ProcessMemory(int pid, SafeFileHandle handle)
    {
        Pid = pid;
        _handle = handle;
    }

    public int Pid { get; }

    public static ProcessMemory Open(int pid)
    {
        try
        {
            return new ProcessMemory(pid, File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ProcessMemoryException($"cannot open /proc/{pid}/mem: {e.Message} {Capabilities.ProcessAccessHint("reading another process")}", e);
        }
    }

    public void Read(ulong address, Span<byte> buffer)
    {
        int n;
        try
        {
            n = address > long.MaxValue ? 0 : RandomAccess.Read(_handle, buffer, (long)address);
        }
        catch (IOException e)
        {
            throw new ProcessMemoryException($"cannot read {buffer.Length} bytes at 0x{address:x} of process {Pid}: {e.Message}", e);
        }
        if (n != buffer.Length)
            throw new ProcessMemoryException($"cannot read {buffer.Length} bytes at 0x{address:x} of process {Pid} (got {n})");
    }

    public byte[] ReadBytes(ulong address, int count)
    {
        var buffer = new byte[count];
        Read(address, buffer);
        return buffer;
    }

    public ulong ReadU64(ulong address)
    {
        Span<byte> b = stackalloc byte[8];
        Read(address, b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public uint ReadU32(ulong address)
    {
        Span<byte> b = stackalloc byte[4];
        Read(address, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public int ReadI32(ulong address) => unchecked((int)ReadU32(address));

    public byte ReadU8(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        Read(address, b);
        return b[0];
    }

    public void Dispose() => _handle.Dispose();
}
