namespace Pyprobe.Python.Runtime;

/// <summary>How a build reaches the thread-local <c>_Py_tss_tstate</c> (3.12+), read from the code of <c>_PyThreadState_GetCurrent</c>.</summary>
public abstract record ThreadStateTls
{
    /// <summary>Local-exec (static executables, seen on Debian 3.13–3.15): <c>mov %fs:Offset,%rax</c>; the same for every process.</summary>
    public sealed record FsRelative(long Offset) : ThreadStateTls;

    /// <summary>
    /// Initial-exec: <c>mov got(%rip),%rax; mov %fs:(%rax),%rax</c>. The GOT slot at file address
    /// <paramref name="GotAddress"/> receives the fs-relative offset (a TPOFF64 relocation) when the
    /// process loads, so it is read from the process.
    /// </summary>
    public sealed record InitialExec(ulong GotAddress) : ThreadStateTls;

    /// <summary>
    /// General-dynamic (shared libpython built with -fPIC, seen on pyenv 3.12/3.13):
    /// <c>lea got(%rip),%rdi; call __tls_get_addr</c>. The GOT pair is a tls_index {module id
    /// (DTPMOD64, filled at load), offset in the module's block (<paramref name="ModuleOffset"/>,
    /// constant in the file)}. A library loaded at start-up sits in the static TLS block, so the
    /// fs-relative offset is the same for all threads; it is found per process through any thread's
    /// dtv (see <see cref="CPythonProcess"/>).
    /// </summary>
    public sealed record GeneralDynamic(ulong GotAddress, ulong ModuleOffset) : ThreadStateTls;
}

/// <summary>Decodes the few x86-64 instruction forms that reveal offsets CPython does not publish.</summary>
public static class MachineCode
{
    private static ReadOnlySpan<byte> Endbr64 => [0xf3, 0x0f, 0x1e, 0xfa];

    private static ReadOnlySpan<byte> SkipEndbr(ReadOnlySpan<byte> code) => code.StartsWith(Endbr64) ? code[4..] : code;

    /// <summary>
    /// The offset of interp->eval_frame: the displacement of the first instruction of
    /// <c>_PyInterpreterState_GetEvalFrameFunc</c>, <c>mov disp(%rdi),%rax</c> (after an optional
    /// endbr64). Null when the code has another shape.
    /// </summary>
    public static int? EvalFrameHookOffset(ReadOnlySpan<byte> code)
    {
        code = SkipEndbr(code);
        // 48 8b 87 disp32: mov disp32(%rdi),%rax; 48 8b 47 disp8: mov disp8(%rdi),%rax.
        if (code.Length >= 7 && code[0] == 0x48 && code[1] == 0x8b && code[2] == 0x87)
            return BinaryPrimitives.ReadInt32LittleEndian(code[3..]);
        if (code.Length >= 4 && code[0] == 0x48 && code[1] == 0x8b && code[2] == 0x47)
            return (sbyte)code[3];
        return null;
    }

    /// <summary>
    /// How <c>_PyThreadState_GetCurrent</c> (at file address <paramref name="address"/>) reads
    /// _Py_tss_tstate; <paramref name="readQword"/> reads 8 bytes of the file at a virtual address
    /// (for the general-dynamic GOT pair). Null when the code has none of the known shapes.
    /// </summary>
    public static ThreadStateTls? ThreadStateTls(ReadOnlySpan<byte> code, ulong address, Func<ulong, ulong> readQword)
    {
        int start = code.StartsWith(Endbr64) ? 4 : 0;
        var c = code[start..];
        // 64 48 8b 04 25 disp32: mov %fs:disp32,%rax (local-exec).
        if (c.Length >= 9 && c[0] == 0x64 && c[1] == 0x48 && c[2] == 0x8b && c[3] == 0x04 && c[4] == 0x25)
            return new ThreadStateTls.FsRelative(BinaryPrimitives.ReadInt32LittleEndian(c[5..]));
        // 48 8b 05 disp32; 64 48 8b 00: mov got(%rip),%rax; mov %fs:(%rax),%rax (initial-exec).
        if (c.Length >= 11 && c[0] == 0x48 && c[1] == 0x8b && c[2] == 0x05 && c[7] == 0x64 && c[8] == 0x48 && c[9] == 0x8b && c[10] == 0x00)
            return new ThreadStateTls.InitialExec(RipTarget(address, start + 7, BinaryPrimitives.ReadInt32LittleEndian(c[3..])));
        // Optional 48 83 ec 08 (sub $8,%rsp), then 66 48 8d 3d disp32: data16 lea got(%rip),%rdi (general-dynamic).
        int lea = c.Length >= 4 && c[0] == 0x48 && c[1] == 0x83 && c[2] == 0xec ? 4 : 0;
        if (c.Length >= lea + 8 && c[lea] == 0x66 && c[lea + 1] == 0x48 && c[lea + 2] == 0x8d && c[lea + 3] == 0x3d)
        {
            ulong got = RipTarget(address, start + lea + 8, BinaryPrimitives.ReadInt32LittleEndian(c[(lea + 4)..]));
            return new ThreadStateTls.GeneralDynamic(got, readQword(got + 8));
        }
        return null;
    }

    private static ulong RipTarget(ulong functionAddress, int nextInstructionOffset, int displacement) =>
        (ulong)((long)functionAddress + nextInstructionOffset + displacement);
}
