using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Pyprobe.Cli.Output;

/// <summary>
/// Where event lines are built: a growable UTF-8 byte buffer flushed to a stream in large writes,
/// so the consumer formats at memory speed and the ring buffer is drained without waiting on I/O. An -o file
/// is written behind (<see cref="WriteBehind"/>): the kernel's copy into the page cache, which costs about as much
/// CPU as formatting, runs on the other CPU while the next buffer fills; standard output is written in place, in
/// order with what goes to standard error.
/// </summary>
internal sealed class EventBuffer : IBufferWriter<byte>, IDisposable
{
    private const int FlushThreshold = 512 * 1024;

    /// <summary>Longest a line should wait in the buffer while events keep arriving (see <see cref="FlushIfOlderThan"/>).</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMilliseconds(100);

    private readonly Stream? _stream;
    private readonly TextWriter? _writer;
    private readonly bool _ownsStream;
    private byte[] _buffer = new byte[FlushThreshold * 2];
    private int _length;
    private long _lastFlush = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>For an -o file: writes on a thread of its own while the next buffer fills.</summary>
    private readonly WriteBehind? _writeBehind;

    private EventBuffer(Stream? stream, TextWriter? writer, bool ownsStream)
    {
        _stream = stream;
        _writer = writer;
        _ownsStream = ownsStream;
        if (ownsStream) _writeBehind = new WriteBehind(stream!);
    }

    /// <summary>
    /// Opens the -o file, or standard output. When the command runs in-process with a redirected
    /// writer (tests), text goes through that writer instead of the raw stdout stream.
    /// </summary>
    public static EventBuffer Open(string? path, TextWriter standardOutput)
    {
        if (!string.IsNullOrEmpty(path) && path != "-")
        {
            try
            {
                return new EventBuffer(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16), null, ownsStream: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                throw OutputFileError.For(path, path, e);
            }
        }
        return StandardOutput.Is(standardOutput)
            ? new EventBuffer(Console.OpenStandardOutput(), null, ownsStream: false)
            : new EventBuffer(null, standardOutput, ownsStream: false);
    }

    /// <summary>The kernel id of the thread that writes an -o file behind; null when lines are written in place.</summary>
    public int? WriterThreadId => _writeBehind?.ThreadId;

    /// <summary>Bytes written so far and not yet flushed.</summary>
    public int Pending => _length;

    public void Advance(int count) => _length += count;

    // Grow first, then take the span: `_buffer.AsSpan(Reserve(n))` would read the field before Reserve replaced the
    // array, and hand out the old, full one.
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_length);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        if (_buffer.Length - _length <= sizeHint) Reserve(sizeHint);
        return _buffer.AsSpan(_length);
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        _length += bytes.Length;
    }

    public void Write(byte b)
    {
        GetSpan(1)[0] = b;
        _length++;
    }

    /// <summary>A number in decimal ASCII, formatted straight into the buffer.</summary>
    public void WriteNumber(long value)
    {
        Utf8Formatter.TryFormat(value, GetSpan(20), out var written);
        _length += written;
    }

    /// <inheritdoc cref="WriteNumber(long)"/>
    public void WriteNumber(ulong value)
    {
        Utf8Formatter.TryFormat(value, GetSpan(20), out var written);
        _length += written;
    }

    public void WriteAscii(string text)
    {
        var span = GetSpan(text.Length);
        for (var i = 0; i < text.Length; i++) span[i] = (byte)text[i];
        _length += text.Length;
    }

    public void WriteUtf8(string text)
    {
        var span = GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        _length += Encoding.UTF8.GetBytes(text, span);
    }

    /// <summary>Flushes when enough has piled up; call after each event.</summary>
    public void FlushIfFull()
    {
        if (_length >= FlushThreshold) Flush();
    }

    /// <summary>Events per poll below which the lines are written at once (see <see cref="AfterPoll"/>).</summary>
    public const int TrickleEvents = 1000;

    /// <summary>
    /// After a poll of the ring delivered <paramref name="events"/> lines: a trickle is written at once, so a line
    /// waits at most one poll interval (10 ms) on its way to a pipe, as a reader like grep expects; a flood keeps
    /// batching up to <see cref="MaxDelay"/>, where large writes keep I/O off the per-event path. A file written
    /// behind batches always: each hand-over wakes the writer thread, and a reader that polls often (the queues are
    /// read every millisecond or so while events flow) woke it for every few lines.
    /// </summary>
    public void AfterPoll(int events)
    {
        if (events < TrickleEvents && _writeBehind is null) Flush();
        else FlushIfOlderThan(MaxDelay);
    }

    /// <summary>
    /// Flushes what waits longer than <paramref name="maxDelay"/>: under a steady trickle of events
    /// the ring is never found empty, and lines piped to another program must still arrive promptly.
    /// </summary>
    public void FlushIfOlderThan(TimeSpan maxDelay)
    {
        if (_length > 0 && System.Diagnostics.Stopwatch.GetElapsedTime(_lastFlush) >= maxDelay) Flush();
    }

    public void Flush()
    {
        if (_length == 0) return;
        try
        {
            if (_writeBehind is not null)
            {
                _buffer = _writeBehind.Hand(_buffer, _length);
            }
            else if (_stream is not null)
            {
                _stream.Write(_buffer, 0, _length);
                _stream.Flush();
            }
            else
            {
                _writer!.Write(Encoding.UTF8.GetString(_buffer, 0, _length));
                _writer.Flush();
            }
        }
        finally
        {
            _length = 0;
            _lastFlush = System.Diagnostics.Stopwatch.GetTimestamp();
        }
    }

    private void Reserve(int sizeHint)
    {
        var needed = _length + Math.Max(sizeHint, 1);
        if (needed > _buffer.Length) Array.Resize(ref _buffer, Math.Max(needed, _buffer.Length * 2));
    }

    public void Dispose()
    {
        try
        {
            Flush();
            _writeBehind?.Complete();
        }
        finally
        {
            if (_ownsStream) _stream!.Dispose();
        }
    }
}
