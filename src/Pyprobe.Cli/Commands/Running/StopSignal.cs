using System.Runtime.InteropServices;
using Pyprobe.Python.Launching;

namespace Pyprobe.Cli.Commands.Running;

/// <summary>
/// SIGINT and SIGTERM end a tracing command cleanly (detach, drain, report) instead of killing
/// pyprobe with probes half torn down. Shared by every command that runs until stopped.
/// </summary>
internal sealed class StopSignal : IDisposable
{
    private const int SigInt = 2, SigTerm = 15;

    private readonly PosixSignalRegistration _interrupt;
    private readonly PosixSignalRegistration _terminate;
    private volatile int _signal;

    /// <param name="wake">Called from the signal handler to wake a loop blocked in a wait.</param>
    public StopSignal(Action wake)
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; _signal = SigInt; wake(); });
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; _signal = SigTerm; wake(); });
    }

    public bool Requested => _signal != 0;

    /// <summary>
    /// A SIGTERM meant for pyprobe alone also ends the command it started; a terminal's Ctrl-C has
    /// already reached the command through its process group.
    /// </summary>
    public void ForwardTo(int pid)
    {
        if (_signal == SigTerm) HeldCommand.Signal(pid, SigTerm);
    }

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
    }
}
