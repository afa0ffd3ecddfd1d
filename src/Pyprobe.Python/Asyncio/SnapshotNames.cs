using Pyprobe.Python.Objects;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Asyncio;

/// <summary>
/// A task's name from the copy of its name object a sample carries (<see cref="Sampling.TaskSnapshot"/>): the name as it
/// was when the sample was taken, whether the task has ended since or not. The object is decoded as a live one is
/// (<see cref="TaskName"/>), its bytes from the copy, its type (which outlives it) from the process.
/// </summary>
public sealed class SnapshotNames
{
    private readonly CopyOverMemory _memory;
    private readonly ObjectReader _objects;

    public SnapshotNames(CPythonProcess process)
    {
        _memory = new CopyOverMemory(process.Memory);
        _objects = new ObjectReader(_memory, process.Binary.Facts, process.Layout.Str, rememberTypes: true);
    }

    /// <summary>The name whose object at <paramref name="nameObject"/> held <paramref name="copy"/>; null where it is not a str or an int, or longer than the copy.</summary>
    public string? Name(ulong nameObject, ReadOnlySpan<byte> copy)
    {
        if (nameObject == 0) return null;
        _memory.Copy(nameObject, copy);
        try
        {
            return TaskName.Of(_objects, nameObject);
        }
        catch (IOException) { return null; } // its type unreadable, or a name longer than the copy
    }

    /// <summary>The process's memory, but for the bytes of one object, which come from a copy (a read past the copy's end fails).</summary>
    private sealed class CopyOverMemory(IMemoryReader process) : IMemoryReader
    {
        private readonly byte[] _copy = new byte[Sampling.TaskSnapshot.NameBytes];
        private ulong _at;

        public void Copy(ulong at, ReadOnlySpan<byte> bytes)
        {
            _at = at;
            bytes[..Math.Min(bytes.Length, _copy.Length)].CopyTo(_copy);
        }

        public void Read(ulong address, Span<byte> buffer)
        {
            var end = address + (ulong)buffer.Length;
            if (end <= _at || address >= _at + (ulong)_copy.Length)
            {
                process.Read(address, buffer);
                return;
            }
            if (address < _at || end > _at + (ulong)_copy.Length) throw new ProcessMemoryException($"0x{address:x}: past the copy of the object at 0x{_at:x}");
            _copy.AsSpan((int)(address - _at), buffer.Length).CopyTo(buffer);
        }
    }
}
