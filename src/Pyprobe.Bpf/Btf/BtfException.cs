namespace Pyprobe.Bpf.Btf;

/// <summary>Kernel type information is missing, malformed, or lacks the type or member asked for.</summary>
public sealed class BtfException(string message) : Exception(message);
