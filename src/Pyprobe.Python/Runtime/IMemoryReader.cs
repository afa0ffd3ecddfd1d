namespace Pyprobe.Python.Runtime;

/// <summary>
/// Somewhere a target's memory can be read from: the live process (<see cref="ProcessMemory"/>) or a copy of parts of
/// it taken earlier (<see cref="Sampling.CapturedMemory"/>). A read that cannot be served throws
/// <see cref="ProcessMemoryException"/>.
/// </summary>
public interface IMemoryReader
{
    void Read(ulong address, Span<byte> buffer);

    byte[] ReadBytes(ulong address, int count)
    {
        var buffer = new byte[count];
        Read(address, buffer);
        return buffer;
    }

    ulong ReadU64(ulong address)
    {
        Span<byte> b = stackalloc byte[8];
        Read(address, b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    uint ReadU32(ulong address)
    {
        Span<byte> b = stackalloc byte[4];
        Read(address, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    int ReadI32(ulong address) => unchecked((int)ReadU32(address));
}
