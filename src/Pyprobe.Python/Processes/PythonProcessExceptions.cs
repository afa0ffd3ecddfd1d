namespace Pyprobe.Python.Processes;

// Distinct types for the ways "attach to PID" can fail besides a missing process (ProcessNotFoundException), so
// the CLI can give targeted advice (not python / rebuild python with --with-dtrace) without parsing messages.

/// <summary>The process maps neither a libpython nor a Python executable.</summary>
public sealed class NotAPythonProcessException(int pid, string executable)
    : UsdtException($"Process {pid} ({executable}) is not a Python interpreter: it maps neither a libpython3.X.so nor a python3.X executable.")
{
    public int Pid { get; } = pid;
    public string Executable { get; } = executable;
}

/// <summary>
/// The process is Python, but the interpreter binary carries no "python" stapsdt notes: it was
/// configured without --with-dtrace (pyenv, python.org, Docker, conda and uv builds by default).
/// </summary>
public sealed class PythonWithoutProbesException(int pid, string binaryPath)
    : UsdtException($"Process {pid} runs Python from {binaryPath}, which has no USDT probes (.note.stapsdt with provider 'python'): this interpreter was built without --with-dtrace.")
{
    public int Pid { get; } = pid;
    /// <summary>The Python binary (as seen inside the process) that was inspected.</summary>
    public string BinaryPath { get; } = binaryPath;
}
