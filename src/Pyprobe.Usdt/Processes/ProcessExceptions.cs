namespace Pyprobe.Usdt;

/// <summary>No /proc/PID: the process does not exist (or exited meanwhile).</summary>
public sealed class ProcessNotFoundException(int pid)
    : UsdtException($"No process with PID {pid} (no /proc/{pid}).")
{
    public int Pid { get; } = pid;
}
