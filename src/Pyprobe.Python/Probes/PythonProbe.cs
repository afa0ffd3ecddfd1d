namespace Pyprobe.Python.Probes;

/// <summary>A probe of CPython's "python" USDT provider with its documented arguments.</summary>
public sealed record PythonProbe(string Name, string Description, IReadOnlyList<ProbeArgument> Arguments);
