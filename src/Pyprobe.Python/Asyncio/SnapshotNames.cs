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
    private readonly ObjectReader _live;

    public SnapshotNames(CPythonProcess process)
    {
        _memory = new CopyOverMemory(process.Memory);
        _objects = new ObjectReader(_memory, process.Binary.Facts, process.Layout.Str, rememberTypes: true);
        _live = new ObjectReader(process.Memory, process.Binary.Facts, process.Layout.Str, rememberTypes: true);
    }

    /// <summary>
    /// The name whose object at <paramref name="nameObject"/> held <paramref name="copy"/> (the bytes the kernel could
    /// copy); where the copy does not hold it all (a name longer than it, or an object at a page's end whose next page
    /// the kernel could not read), the name the object holds now, as it is read; null where it is not a str or an int,
    /// or cannot be read.
    /// </summary>
    public string? Name(ulong nameObject, ReadOnlySpan<byte> copy)
    {
        if (nameObject == 0) return null;
        _memory.Copy(nameObject, copy);
        try
        {
            return TaskName.Of(_objects, nameObject);
        }
        catch (IOException) { } // its type unreadable, or a name longer than the copy
        try
        {
            return TaskName.Of(_live, nameObject);
        }
        catch (IOException) { return null; }
    }

    /// <summary>The process's memory, but for the bytes of one object, which come from a copy (a read past the copy's end fails).</summary>
    private sealed class CopyOverMemory(IMemoryReader process) : IMemoryReader
    {
        private readonly byte[] _copy = new byte[Sampling.TaskSnapshot.NameBytes];
        private ulong _at;
        private int _length;

        public void Copy(ulong at, ReadOnlySpan<byte> bytes)
        {
            _at = at;
            _length = Math.Min(bytes.Length, _copy.Length);
            bytes[.._length].CopyTo(_copy);
        }

        public void Read(ulong address, Span<byte> buffer)
        {
            var end = address + (ulong)buffer.Length;
            // The object's bytes are those the copy could have held; a read among them past what it holds fails.
            if (end <= _at || address >= _at + (ulong)_copy.Length)
            {
                process.Read(address, buffer);
                return;
            }
            if (address < _at || end > _at + (ulong)_length) throw new ProcessMemoryException($"0x{address:x}: past the copy of the object at 0x{_at:x}");
            _copy.AsSpan((int)(address - _at), buffer.Length).CopyTo(buffer);
        }
    }
}
