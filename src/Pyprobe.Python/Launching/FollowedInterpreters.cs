using System.Collections.Concurrent;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Python.Launching;

/// <summary>
/// Follows a started command for as long as it runs, on a thread of its own, so that every CPython process it starts
/// (in sequence, in parallel, as children of a Python) is stopped at its interpreter's start and queued for attaching,
/// while every other process it starts (a shell's commands, a compiler under make) is let go at once, not when the
/// run's loop next looks. Whoever takes a process from the queue continues it once attached; one never taken is
/// continued when following stops.
/// </summary>
public sealed class FollowedInterpreters : IDisposable
{
    private const int PumpMilliseconds = 50;
    private readonly ProcessFollower _follower;
    private readonly ConcurrentQueue<StoppedInterpreter> _ready = new();
    private readonly ManualResetEventSlim _arrived = new();
    private readonly ManualResetEventSlim _finished = new();
    private volatile bool _stopping;
    private volatile Action? _onArrival;
    private bool _stopped;
    private int? _alreadyAttached;

    private FollowedInterpreters(ProcessFollower follower, int? alreadyAttached)
    {
        _follower = follower;
        _alreadyAttached = alreadyAttached;
    }

    /// <summary>Starts following <paramref name="rootPid"/> (still held) and what it starts.</summary>
    /// <param name="alreadyAttached">A process whose first interpreter is traced already (attached by file before its exec): let go when it stops there.</param>
    /// <param name="followForks">Also the processes it forks; false: only the new programs it runs itself (a running process's execve).</param>
    public static FollowedInterpreters Start(int rootPid, int? alreadyAttached = null, bool followForks = true)
    {
        var following = new FollowedInterpreters(ProcessFollower.Start(rootPid, followForks), alreadyAttached);
        // Not waited for (UnwaitedThread): the follower's programs are attached already, and a stopped process waits.
        UnwaitedThread.Start(following.Follow, "pyprobe follow");
        return following;
    }

    /// <summary>Why following ended early (an unexpected error on its thread), or null.</summary>
    public string? Failure { get; private set; }

    private void Follow()
    {
        try
        {
            while (!_stopping)
            {
                foreach (var stopped in _follower.Pump(PumpMilliseconds))
                {
                    if (stopped.Pid == _alreadyAttached)
                    {
                        _alreadyAttached = null;
                        Release(stopped);
                        continue;
                    }
                    _ready.Enqueue(stopped);
                    _arrived.Set();
                    _onArrival?.Invoke();
                }
            }
        }
        catch (Exception e)
        {
            // Any error here would otherwise end pyprobe without detaching; the run goes on with what it has attached.
            Failure = e.Message;
            _onArrival?.Invoke();
        }
        finally
        {
            _finished.Set();
        }
    }

    /// <summary>
    /// Waits for the first process stopped at its interpreter's start (the caller continues it), or null once
    /// <paramref name="over"/> says the command is over.
    /// </summary>
    public StoppedInterpreter? WaitForFirst(Func<bool> over)
    {
        while (true)
        {
            _arrived.Reset();
            if (_ready.TryDequeue(out var stopped)) return stopped;
            if (over() || Failure is not null) return _ready.TryDequeue(out stopped) ? stopped : null;
            _arrived.Wait(PumpMilliseconds);
        }
    }

    /// <summary>Calls <paramref name="onArrival"/> (from the follower's thread) whenever a process is queued, e.g. to wake the run's loop.</summary>
    public void NotifyWith(Action onArrival) => _onArrival = onArrival;

    /// <summary>A process stopped at its interpreter's start, if one is waiting; the caller attaches and continues it.</summary>
    public bool TryTake(out StoppedInterpreter stopped) => _ready.TryDequeue(out stopped!);

    /// <summary>Lets <paramref name="stopped"/> run (attached or not).</summary>
    public static void Release(StoppedInterpreter stopped) => ProcessSignals.Send(stopped.Pid, ProcessSignals.SigCont);

    /// <summary>Stops following: nothing is stopped any more, and every process still stopped or queued is continued.</summary>
    public void Stop()
    {
        if (_stopped) return;
        _stopped = true;
        _stopping = true;
        _follower.Interrupt();
        _finished.Wait();
        _follower.Dispose();
        while (_ready.TryDequeue(out var stopped)) Release(stopped);
        _arrived.Dispose();
        _finished.Dispose();
    }

    public void Dispose() => Stop();
}
