namespace Pyprobe.Bpf.Asm;

/// <summary>
/// A program could not be assembled: a label is undefined, defined twice or dangling, or a jump does not reach.
/// A distinct type so callers can tell generator bugs apart from kernel/verifier failures.
/// </summary>
public sealed class AssemblerException : Exception
{
    public AssemblerException(string message)
        : base(message)
    {
    }

    public AssemblerException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
