namespace Pyprobe.Python.Runtime;

/// <summary>A process or binary whose CPython runtime pyprobe cannot model; the message is one line saying why.</summary>
public sealed class UnsupportedRuntimeException(string message) : Exception(message);
