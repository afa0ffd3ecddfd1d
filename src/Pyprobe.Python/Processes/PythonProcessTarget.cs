namespace Pyprobe.Python.Processes;

/// <summary>The file in a running process that carries CPython's "python" USDT probes.</summary>
/// <param name="Pid">The process.</param>
/// <param name="HostPath">Path to pass to the kernel for uprobe attach (/proc/PID/root/… when the process lives in another mount namespace or root).</param>
/// <param name="DisplayPath">Path as the process sees it (for messages).</param>
/// <param name="UsdtBinary">The parsed probes; its <see cref="UsdtBinary.Path"/> is the path it was read through.</param>
/// <param name="Kind">libpython, main executable or loader-started python binary.</param>
/// <param name="Executable">The process's /proc/PID/exe target (the dynamic loader when started via ld.so).</param>
public sealed record PythonProcessTarget(int Pid, string HostPath, string DisplayPath, UsdtBinary UsdtBinary, MappedPythonFileKind Kind, string Executable);
