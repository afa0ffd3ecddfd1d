using System.Diagnostics;
using Pyprobe.Bpf.Sys;
using Pyprobe.Python.Sessions;

namespace Pyprobe.Cli.Commands.Running;

/// <summary>
/// --priority auto: the threads that read the ring and write the output run as started while they keep up, at
/// nice <see cref="ConsumerPriorities.HighNice"/> from the moment the ring holds a quarter of its size unread, and
/// as started again once it has stayed under an eighth for a second: pyprobe jumps ahead of the traced programs only
/// while it is behind them (with the reader that woke for every few records, raised for the whole run it made a lone
/// traced program wait 10-15% of its run on 2 CPUs; reading in batches, the bench no longer tells the two apart).
/// The kernel wakes the reader when 1/16 of the ring waits (TraceSessionOptions.WakeupFraction), so a reader that runs
/// when woken sees a little over 1/16: a quarter means it did not run for a while, an eighth means it is back on time.
/// </summary>
internal sealed class ReaderPriorityGovernor
{
    /// <summary>Raise when at least 1/<see cref="RaiseAtFraction"/> of the ring is unread.</summary>
    public const int RaiseAtFraction = 4;

    /// <summary>Counts as caught up while less than 1/<see cref="CaughtUpFraction"/> of the ring is unread.</summary>
    public const int CaughtUpFraction = 8;

    /// <summary>How long the reader must stay caught up before it goes back to its starting priority.</summary>
    public static readonly TimeSpan CaughtUpFor = TimeSpan.FromSeconds(1);

    private readonly IReadOnlyList<int> _threads;
    private readonly int[] _startingNice;
    private readonly IEventSession _session;
    private bool _raised;
    private string? _refusal;
    private int _raises;
    private long _raisedAt;
    private long _caughtUpSince;
    private long _raisedTicks;

    /// <param name="threads">Kernel thread ids of the reader and the writer.</param>
    public ReaderPriorityGovernor(IReadOnlyList<int> threads, IEventSession session)
    {
        _threads = threads;
        _session = session;
        _startingNice = threads.Select(ThreadScheduling.GetNice).ToArray();
    }

    /// <summary>Looks at how far the reader is behind and raises or lowers the threads; called on every poll, before the drain.</summary>
    public void Observe()
    {
        if (_refusal is not null) return;
        var pending = _session.RingPendingBytes;
        var size = (ulong)_session.RingBytes;
        var now = Stopwatch.GetTimestamp();
        if (!_raised)
        {
            if (pending * RaiseAtFraction >= size) Raise(now);
            return;
        }
        if (pending * CaughtUpFraction >= size)
        {
            _caughtUpSince = 0;
            return;
        }
        if (_caughtUpSince == 0) _caughtUpSince = now;
        else if (Stopwatch.GetElapsedTime(_caughtUpSince, now) >= CaughtUpFor) Lower(now);
    }

    private void Raise(long now)
    {
        try
        {
            // As --priority high does it: with reset-on-fork, so a thread started from the reader while it is raised
            // (an interpreter watch of a followed process, for one) does not inherit nice -10.
            ConsumerPriorities.Raise(ConsumerPriority.High, _threads);
        }
        catch (SyscallException e)
        {
            // Nothing changed (see Raise); the reader stays as started from here on.
            _refusal = ConsumerPriorities.Refusal(e);
            return;
        }
        _raised = true;
        _raises++;
        _raisedAt = now;
        _caughtUpSince = 0;
    }

    private void Lower(long now)
    {
        // Lowering a nice value back up never needs a privilege.
        for (var i = 0; i < _threads.Count; i++) ThreadScheduling.SetNice(_threads[i], _startingNice[i]);
        if (_raised) _raisedTicks += now - _raisedAt;
        _raised = false;
    }

    /// <summary>What the end-of-run report says about it: nothing when the reader kept up at its starting priority.</summary>
    public IEnumerable<string> Report()
    {
        var raisedTicks = _raisedTicks + (_raised ? Stopwatch.GetTimestamp() - _raisedAt : 0);
        if (_raises > 0)
            yield return $"pyprobe: note: pyprobe's event reader fell behind {_raises} time{(_raises == 1 ? "" : "s")} (a quarter of the ring unread) and read at nice {ConsumerPriorities.HighNice} for {(double)raisedTicks / Stopwatch.Frequency:0.00} s in all (--priority high: for the whole run, normal: never)";
        if (_refusal is not null)
            yield return $"pyprobe: note: pyprobe's event reader fell behind and could not raise its priority ({_refusal}); it read at normal priority";
    }
}
