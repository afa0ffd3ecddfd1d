using System.Diagnostics;

namespace Pyprobe.Python.Launching;

/// <summary>
/// Starts a command stopped before it runs anything, so probes can be attached to its pid first and
/// its very first Python call is seen. The child is `sh -c 'kill -STOP $$; exec "$@"'`: arguments reach
/// the command exactly as given, and stdin/stdout/stderr are inherited untouched. The probes stay
/// attached across the exec because both attach paths follow the process, not its old memory map.
/// </summary>
public sealed class HeldCommand : IDisposable
{
    private readonly Process _process;

    private HeldCommand(Process process) => _process = process;

    public int Pid => _process.Id;

    /// <summary>Set (to 1) by pyprobe in its own environment when it was started with SIGINT ignored.</summary>
    public const string InterruptWasIgnoredVariable = "PYPROBE_SIGINT_WAS_IGNORED";

    public static HeldCommand Start(IReadOnlyList<string> command)
    {
        if (command.Count == 0) throw new UsdtException("no command given after --");
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        // A pyprobe started with SIGINT ignored runs with it at its default (Pyprobe.Cli.InterruptibleStart); the
        // command gets it ignored, as it would have without pyprobe.
        var keepIgnored = Environment.GetEnvironmentVariable(InterruptWasIgnoredVariable) == "1" ? "trap '' INT; " : "";
        info.ArgumentList.Add(keepIgnored + "kill -STOP $$; exec \"$@\"");
        info.Environment.Remove(InterruptWasIgnoredVariable); // the command's environment is the user's
        info.ArgumentList.Add("pyprobe-held");
        foreach (var argument in command) info.ArgumentList.Add(argument);
        var process = Process.Start(info) ?? throw new UsdtException($"cannot start {command[0]}");
        var held = new HeldCommand(process);
        held.WaitUntilStopped();
        return held;
    }

    private bool _resumed;
    private int? _heldDescendant;

    /// <summary>Lets the command run (and the descendant it was followed to, which waits stopped at its interpreter's start).</summary>
    public void Resume()
    {
        _resumed = true;
        ProcessSignals.Send(Pid, ProcessSignals.SigCont);
        if (_heldDescendant is int descendant) ProcessSignals.Send(descendant, ProcessSignals.SigCont);
    }

    /// <summary>
    /// Follows the command (it starts running) until one of its processes starts CPython, and keeps that one stopped
    /// where its interpreter exists and has run no Python code (see <see cref="ProcessFollower"/>); <see cref="Resume"/>
    /// lets it go. Following goes on (<see cref="Following"/>): every later CPython process of the command is stopped
    /// the same way until the run takes it. Null when the command ended without starting Python.
    /// </summary>
    public StoppedInterpreter? RunUntilInterpreter()
    {
        _following = FollowedInterpreters.Start(Pid);
        ProcessSignals.Send(Pid, ProcessSignals.SigCont);
        var found = _following.WaitForFirst(() => _process.HasExited);
        _heldDescendant = found?.Pid;
        if (found is null) StopFollowing();
        return found;
    }

    private FollowedInterpreters? _following;

    /// <summary>
    /// For a command whose own process is attached by file before it runs: follows what it starts from now on (it runs
    /// at <see cref="Resume"/>), so every other CPython process of it waits stopped at its start in <see cref="Following"/>.
    /// </summary>
    public void FollowDescendants() => _following ??= FollowedInterpreters.Start(Pid, alreadyAttached: Pid);

    /// <summary>The command's CPython processes after the first, stopped at their start while the run goes on; null when not followed.</summary>
    public FollowedInterpreters? Following => _following;

    /// <summary>No process of the command is stopped any more; those waiting are let go (the run is over).</summary>
    public void StopFollowing() => _following?.Stop();

    /// <summary>Sends <paramref name="signal"/> to a process (used to pass SIGTERM on to the command).</summary>
    public static void Signal(int pid, int signal) => ProcessSignals.Send(pid, signal);

    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the command; returns its exit code, or 128+signal if a signal ended it (as shells report it).</summary>
    public int WaitForExit()
    {
        // The run is over: a Python the command starts now must not wait for an attach that will not come.
        StopFollowing();
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public bool WaitForExit(int milliseconds) => _process.WaitForExit(milliseconds);

    /// <summary>
    /// Ends the command the way timeout(1) ends its own process group: SIGTERM to the command and to every
    /// process it started, then SIGKILL to those still there after <paramref name="grace"/>. Returns true
    /// when SIGKILL was needed. The command's exit is left for <see cref="WaitForExit()"/> to collect.
    /// </summary>
    public bool Terminate(TimeSpan grace)
    {
        StopFollowing();
        // Named by pid and start time, so a pid reused meanwhile is never signalled.
        var tree = ProcessTree.WithDescendants(Pid).Select(pid => (Pid: pid, Started: ProcessTree.StartTime(pid))).ToList();
        bool Gone((int Pid, string? Started) p) => p.Pid == Pid ? _process.HasExited : !ProcessTree.IsAlive(p.Pid) || ProcessTree.StartTime(p.Pid) != p.Started;
        foreach (var p in tree) ProcessSignals.Send(p.Pid, ProcessSignals.SigTerm);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < grace)
        {
            if (tree.All(Gone)) return false;
            Thread.Sleep(20);
        }
        var left = tree.Where(p => !Gone(p)).ToList();
        foreach (var p in left) ProcessSignals.Send(p.Pid, ProcessSignals.SigKill);
        return left.Count > 0;
    }

    private void WaitUntilStopped()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (_process.HasExited) throw new UsdtException($"the command exited before it could be traced (exit code {_process.ExitCode})");
            if (ProcessTree.State(Pid) == 'T') return;
            Thread.Sleep(1);
        }
        throw new UsdtException("the command did not stop for attaching within 10 s");
    }

    public void Dispose()
    {
        StopFollowing();
        if (!_resumed)
        {
            // Never resumed means attaching failed: it has run nothing yet (a followed command: no Python code), and
            // the user asked for a traced run, so it is ended rather than left stopped or let run untraced.
            if (_heldDescendant is int descendant) ProcessSignals.Send(descendant, ProcessSignals.SigKill);
            if (!_process.HasExited)
            {
                ProcessSignals.Send(Pid, ProcessSignals.SigKill);
                _process.WaitForExit();
            }
        }
        _process.Dispose();
    }
}
