namespace Pyprobe.Cli.Output;

/// <summary>
/// Writes full output buffers to a file on a thread of its own, so formatting the next buffer and the kernel's copy
/// of the last one into the page cache run on two CPUs at once. Double buffering: the writer takes a buffer, the
/// caller fills the other; handing over the next waits until the previous one is written. A write error is
/// rethrown to the caller at the next hand-over or at <see cref="Complete"/>.
/// </summary>
internal sealed class WriteBehind : IDisposable
{
    private readonly Stream _stream;
    private readonly Thread _thread;
    private readonly object _lock = new();
    private byte[]? _pending;
    private int _pendingLength;
    private byte[]? _written;
    private bool _busy;
    private bool _closing;
    private Exception? _error;
    private int _threadId;

    public WriteBehind(Stream stream)
    {
        _stream = stream;
        _thread = new Thread(Run) { IsBackground = true, Name = "pyprobe output" };
        _thread.Start();
        lock (_lock)
            while (_threadId == 0) Monitor.Wait(_lock);
    }

    /// <summary>The kernel id of the writing thread, so a run can raise its priority with the reader's (see ConsumerPriority).</summary>
    public int ThreadId => _threadId;

    /// <summary>Hands <paramref name="full"/> (its first <paramref name="length"/> bytes) to the writer; returns the buffer to fill next.</summary>
    public byte[] Hand(byte[] full, int length)
    {
        lock (_lock)
        {
            while ((_pending is not null || _busy) && _error is null) Monitor.Wait(_lock);
            ThrowIfFailed();
            _pending = full;
            _pendingLength = length;
            Monitor.PulseAll(_lock);
            var next = _written ?? new byte[full.Length];
            _written = null;
            return next;
        }
    }

    /// <summary>Waits until everything handed over is written, then ends the thread.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _closing = true;
            Monitor.PulseAll(_lock);
        }
        _thread.Join();
        ThrowIfFailed();
    }

    private void Run()
    {
        lock (_lock)
        {
            _threadId = Pyprobe.Bpf.Sys.ThreadScheduling.CurrentThreadId();
            Monitor.PulseAll(_lock);
        }
        while (true)
        {
            byte[] buffer;
            int length;
            lock (_lock)
            {
                while (_pending is null && !_closing) Monitor.Wait(_lock);
                if (_pending is null) return;
                buffer = _pending;
                length = _pendingLength;
                _pending = null;
                _busy = true;
            }
            try
            {
                _stream.Write(buffer, 0, length);
            }
            catch (Exception e)
            {
                lock (_lock)
                {
                    _error ??= e;
                    _busy = false;
                    Monitor.PulseAll(_lock);
                }
                return;
            }
            lock (_lock)
            {
                _busy = false;
                _written = buffer;
                Monitor.PulseAll(_lock);
            }
        }
    }

    private void ThrowIfFailed()
    {
        if (_error is { } e) throw new IOException(e.Message, e);
    }

    public void Dispose()
    {
        if (_thread.IsAlive) Complete();
    }
}
