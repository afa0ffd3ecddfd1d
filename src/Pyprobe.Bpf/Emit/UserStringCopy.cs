using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Emit;

/// <summary>Where a copied string's length and "was cut" mark go, relative to the record register.</summary>
/// <param name="LengthOffset">Length without the NUL.</param>
/// <param name="LengthSize">Width of the length field.</param>
/// <param name="TruncatedOffset">u32 of truncation bits.</param>
/// <param name="TruncatedBit">This string's bit in it.</param>
/// <param name="TruncatedWordIsFresh">The word is known to be 0 and no other string marks it: one store instead of
/// read-or-write.</param>
public sealed record StringFields(int LengthOffset, MemorySize LengthSize, int TruncatedOffset, int TruncatedBit, bool TruncatedWordIsFresh = false);

/// <summary>
/// Copies a NUL-terminated user-space string into a record with <c>bpf_probe_read_user_str</c>, keeping at most
/// <c>keep</c> bytes and marking a string that was cut. The signed bounds checks on R0 are what let the verifier prove
/// that a cursor advanced by the length keeps every later pointer inside the record.
/// </summary>
public static class UserStringCopy
{
    /// <summary>
    /// Source address in R3. Writes to <c>record + dataOffset (+ cursor)</c>, reading up to <paramref name="readSize"/>
    /// bytes (with the NUL): a result of <paramref name="readSize"/> means the string may be longer, so it counts as
    /// cut to <paramref name="keep"/> bytes. <c>readSize = keep + 2</c> tells a string of exactly keep bytes from a
    /// longer one. Leaves the length in R0 (and adds it to <paramref name="cursor"/>). Clobbers R0–R5.
    /// </summary>
    public static void Emit(InstructionBuilder code, Register record, int dataOffset, Register? cursor, int keep, int readSize, StringFields fields)
    {
        if (keep < 0 || readSize < keep + 1) throw new ArgumentOutOfRangeException(nameof(readSize), $"reading {readSize} bytes cannot keep {keep} plus a NUL");
        var scope = code.Scope("str");
        string empty = scope["empty"], whole = scope["whole"], done = scope["done"];
        code.Mov64(Register.R1, record).Add64(Register.R1, dataOffset);
        if (cursor is { } c) code.Add64(Register.R1, c);
        code.Mov64(Register.R2, readSize)
            .Call(HelperFunction.ProbeReadUserStr)
            .JumpIf(JumpCondition.SignedLess, Register.R0, 1, empty)
            .JumpIf(JumpCondition.SignedLess, Register.R0, readSize, whole);
        if (fields.TruncatedWordIsFresh)
        {
            code.StoreImm(MemorySize.Word, record, (short)fields.TruncatedOffset, 1 << fields.TruncatedBit);
        }
        else
        {
            code.LoadMem(MemorySize.Word, Register.R1, record, (short)fields.TruncatedOffset)
                .Or64(Register.R1, 1 << fields.TruncatedBit)
                .StoreMem(MemorySize.Word, record, (short)fields.TruncatedOffset, Register.R1);
        }
        if (keep + 1 != readSize) code.Mov64(Register.R0, keep + 1);
        code.Label(whole)
            .Sub64(Register.R0, 1) // drop the NUL
            .Jump(done)
            .Label(empty)
            .Mov64(Register.R0, 0)
            .Label(done)
            .StoreMem(fields.LengthSize, record, (short)fields.LengthOffset, Register.R0);
        if (cursor is { } advance) code.Add64(advance, Register.R0);
    }
}
