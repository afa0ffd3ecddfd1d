namespace Pyprobe.Python.Probes;

/// <summary>How pyprobe reads and prints one probe argument.</summary>
public enum ProbeArgumentKind
{
    /// <summary>A signed integer (line numbers, generations, counts).</summary>
    Integer,
    /// <summary>A C string in the target's memory, read whole by the BPF program.</summary>
    CString,
    /// <summary>A 0/1 flag printed as a boolean.</summary>
    Boolean,
    /// <summary>An address that is printed, not dereferenced (audit's borrowed args tuple).</summary>
    Pointer,
}

/// <summary>One argument of a CPython probe as declared in Include/pydtrace.d.</summary>
public sealed record ProbeArgument(string Name, string CType, ProbeArgumentKind Kind);
