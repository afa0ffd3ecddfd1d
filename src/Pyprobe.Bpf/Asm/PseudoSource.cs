namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Values the kernel reads from the src field of certain instructions where no real source register exists.
/// They reuse the <see cref="Register"/> numbering because they travel in the same 4 bits.
/// </summary>
public static class PseudoSource
{
    /// <summary><c>BPF_PSEUDO_MAP_FD</c>: an <c>lddw</c> whose immediate is a map fd; the verifier swaps in the map pointer.</summary>
    public const Register MapFd = Register.R1;

    /// <summary><c>BPF_PSEUDO_MAP_VALUE</c>: an <c>lddw</c> pointing at a map's value (fd in slot 1, byte offset in slot 2).</summary>
    public const Register MapValue = Register.R2;

    /// <summary><c>BPF_PSEUDO_CALL</c>: a <c>call</c> whose immediate is a relative slot offset to a BPF-to-BPF function.</summary>
    public const Register BpfFunctionCall = Register.R1;

    /// <summary><c>BPF_PSEUDO_KFUNC_CALL</c>: a <c>call</c> whose immediate is a kernel function's BTF id.</summary>
    public const Register KernelFunctionCall = Register.R2;

    /// <summary><c>BPF_PSEUDO_FUNC</c>: an <c>lddw</c> whose first immediate is a relative slot offset to a BPF function (a callback for <c>bpf_loop</c>).</summary>
    public const Register Function = Register.R4;
}
