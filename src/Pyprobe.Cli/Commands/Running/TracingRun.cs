using System.Diagnostics;
using Pyprobe.Python.Launching;
using Pyprobe.Python.Sessions;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Cli.Commands.Running;

/// <summary>What a command attached: the live session and the words of the Attached line.</summary>
/// <param name="Probes">What was attached ("function__entry, function__return", "counters").</param>
/// <param name="Where">To what ("/usr/bin/python3.11 (pid 42)"; see <see cref="TargetText.Where"/>).</param>
/// <param name="AttachProcess">Attaches the session to one more process (a Python a followed command starts later), returning what it attached; null when the session cannot grow.</param>
/// <param name="Governor">Raises the reader while it falls behind (--priority auto); consulted on every poll of a streaming run.</param>
internal sealed record Attachment<TSession>(TSession Session, string Probes, string Where, Func<TraceTarget, string>? AttachProcess = null,
    ReaderPriorityGovernor? Governor = null) where TSession : ILiveSession;

/// <summary>
/// The life of every tracing command, once: take the resolved targets, attach (the command's own checks, notes
/// and session), print the Attached line, release a held command, run until Ctrl-C / SIGTERM / the targets'
/// exit / --duration (streaming events or waiting for interval deadlines), detach, report, and return the exit
/// code (the command's own for -- CMD).
/// </summary>
internal sealed class TracingRun<TSession> : IDisposable where TSession : ILiveSession
{
    /// <summary>
    /// How often a streaming run looks at the ring even without a wakeup: records are committed without
    /// waking the reader until the ring is 1/16 full.
    /// </summary>
    private const int PollMilliseconds = TraceSession.PollInterval;

    private readonly TargetSet _targets;
    private readonly StopSignal _stop;
    private readonly TextWriter _stderr;
    private readonly TimeSpan? _duration;
    private readonly ReaderPriorityGovernor? _governor;
    private readonly Stopwatch _elapsed = new();
    private bool _durationReached, _completed;

    /// <summary>How long a command ended at --duration gets between SIGTERM and SIGKILL.</summary>
    public static readonly TimeSpan CommandGrace = TimeSpan.FromSeconds(5);

    private TracingRun(TargetSet targets, TSession session, ReaderPriorityGovernor? governor, TimeSpan? duration, TextWriter stderr)
    {
        _targets = targets;
        Session = session;
        _governor = governor;
        _duration = duration;
        _stderr = stderr;
        _stop = new StopSignal(session.Wake);
    }

    public TSession Session { get; }
    public TargetSet Targets => _targets;

    /// <summary>Time since the targets were released.</summary>
    public TimeSpan Elapsed => _elapsed.Elapsed;

    /// <summary>Ctrl-C or SIGTERM arrived.</summary>
    public bool StopRequested => _stop.Requested;

    /// <summary>
    /// Attaches with <paramref name="attach"/> (which may print notes and throw a one-line error), prints the
    /// Attached line and releases a held command. Owns <paramref name="targets"/> from here on.
    /// </summary>
    public static TracingRun<TSession> Start(TargetSet targets, Func<TargetSet, Attachment<TSession>> attach, TimeSpan? duration, TextWriter stderr)
    {
        try
        {
            var took = Stopwatch.StartNew();
            var attached = attach(targets);
            took.Stop();
            TracingRun<TSession> run;
            try
            {
                run = new TracingRun<TSession>(targets, attached.Session, attached.Governor, duration, stderr);
            }
            catch
            {
                attached.Session.Dispose();
                throw;
            }
            // Following starts before the Attached line (under 1 ms for -p): from then on a new program a traced process
            // runs is attached too.
            LaunchPhases.Mark("run started (output open)");
            targets.FollowInto(attached.AttachProcess, attached.Session.Wake);
            LaunchPhases.Mark("exec follower started");
            stderr.WriteLine($"Attached {attached.Probes} to {attached.Where} via {attached.Session.AttachModeName} in {took.Elapsed.TotalMilliseconds:0.0} ms. Ctrl-C to stop.");
            LaunchPhases.Mark("Attached line written");
            stderr.Flush();
            targets.Child?.Resume();
            run._elapsed.Start();
            return run;
        }
        catch
        {
            targets.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Streams events: <paramref name="drain"/> delivers what waits (returning how many) until the run ends,
    /// <paramref name="idle"/> runs when there was nothing, <paramref name="busy"/> with the count when there was. Then detaches
    /// (semaphores drop at once) and drains what is still in the ring.
    /// </summary>
    public void Stream(Func<int> drain, Action idle, Action<int>? busy = null)
    {
        while (!_stop.Requested)
        {
            Session.Wait(PollMilliseconds);
            _governor?.Observe();
            AttachFollowed();
            var delivered = drain();
            if (delivered == 0) idle();
            else busy?.Invoke(delivered);
            if (DurationReached()) break;
            if (!_targets.AnyTargetAlive()) break;
        }
        Session.Detach();
        while (drain() > 0) { }
    }

    /// <summary>
    /// Waits until <paramref name="deadline"/> (time since start) while the session takes what arrives. True when
    /// the deadline came and the run goes on; false when it is over (signal, --duration, every target gone).
    /// </summary>
    public bool WaitUntil(TimeSpan deadline)
    {
        while (true)
        {
            if (_stop.Requested) return false;
            var now = _elapsed.Elapsed;
            if (DurationReached()) return false;
            if (!_targets.AnyTargetAlive()) return false;
            if (now >= deadline) return true;
            AttachFollowed();
            var until = _duration is { } d && d < deadline ? d : deadline;
            Session.Wait(Math.Clamp((int)Math.Ceiling((until - now).TotalMilliseconds), 1, 100));
        }
    }

    /// <summary>Attaches the Pythons a followed command started since the last look (each waits stopped until then).</summary>
    private void AttachFollowed()
    {
        foreach (var line in _targets.AttachFollowed()) _stderr.WriteLine(line);
    }

    private bool DurationReached() => _durationReached = _durationReached || (_duration is { } limit && _elapsed.Elapsed >= limit);

    /// <summary>Detaches every probe now (semaphores drop, the 3.11 gate closes); what was collected stays readable.</summary>
    public void Detach() => Session.Detach();

    /// <summary>"Detached after 1.23 s", the start of every run's last report line.</summary>
    public string DetachedAfter => $"Detached after {_elapsed.Elapsed.TotalSeconds:0.00} s";

    /// <summary>
    /// The report of an event stream: delivered, lost (with a warning when any were) and, when a filter dropped
    /// some, shown. <paramref name="advice"/> ends the warning.
    /// </summary>
    public IEnumerable<string> EventReport(long delivered, ulong lost, long? shown = null, string advice = "")
    {
        yield return $"{DetachedAfter}: {delivered} events delivered, {lost} lost{(shown is { } n && n != delivered ? $", {n} shown" : "")}";
        if (lost > 0)
            yield return $"pyprobe: warning: {lost} events were lost because the ring buffer was full{advice}";
    }

    /// <summary>Detaches, prints <paramref name="report"/> and returns the exit code (the command's own for -- CMD).</summary>
    /// <param name="endCommandAtDuration">
    /// When --duration ended the run, end a started command still running too, as timeout(1) would (see
    /// <see cref="HeldCommand.Terminate"/>), say so, and return success: the run was as long as asked.
    /// </param>
    public int Complete(IEnumerable<string> report, bool endCommandAtDuration = false)
    {
        _completed = true;
        Session.Detach();
        foreach (var line in report) _stderr.WriteLine(line);
        foreach (var line in _governor?.Report() ?? []) _stderr.WriteLine(line);
        _stderr.Flush();
        if (_targets.Child is { } child)
        {
            if (_stop.Requested && !child.HasExited) _stop.ForwardTo(child.Pid);
            else if (endCommandAtDuration && _durationReached && !child.HasExited)
            {
                var killed = child.Terminate(CommandGrace);
                _stderr.WriteLine(killed
                    ? $"pyprobe: --duration reached: the command (pid {child.Pid}) was still running {CommandGrace.TotalSeconds:0} s after SIGTERM; ended it with SIGKILL"
                    : $"pyprobe: --duration reached: ended the command (pid {child.Pid}) with SIGTERM");
                _stderr.Flush();
                child.WaitForExit();
                return ExitCodes.Success;
            }
            return child.WaitForExit();
        }
        return ExitCodes.Success;
    }

    public void Dispose()
    {
        _stop.Dispose();
        Session.Dispose();
        // A run that ends on an error leaves a started command running, untraced (its probes are gone): said with its
        // pid, since it is no longer the terminal's foreground job and Ctrl-C no longer reaches it.
        if (!_completed && _targets.Child is { HasExited: false } child)
        {
            _stderr.WriteLine($"pyprobe: the command (pid {child.Pid}) goes on running, no longer traced");
            _stderr.Flush();
        }
        _targets.Dispose();
    }
}
