namespace Pyprobe.Usdt.Unwind;

/// <summary>Where code addresses of one process lie: what <see cref="NativeUnwinder"/> needs of a process (tests give it a fixed map).</summary>
public interface INativeCodeMap
{
    /// <summary>The module whose code holds <paramref name="address"/>, and the address's link-time value in its file.</summary>
    bool TryLocate(ulong address, out NativeModule module, out ulong vaddr);

    /// <summary>Whether <paramref name="address"/> lies in any executable mapping, file-backed or not (JIT code).</summary>
    bool IsExecutable(ulong address);
}
