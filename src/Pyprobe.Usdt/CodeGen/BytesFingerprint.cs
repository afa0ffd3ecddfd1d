using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// A fingerprint of string bytes a program has copied into its record: what user space knows a string by once it was
/// sent (with its address), when later records carry only the reference (the eval-frame code-object memo, the USDT
/// <see cref="StringPairMemo"/>). A hash of the bytes themselves, so a string learnt again gets the key it had.
/// </summary>
public static class BytesFingerprint
{
    /// <summary>
    /// The longest string that gets a fingerprint (so a code object named by a longer one is read whole every time). The
    /// verifier walks the hashing loop once per possible round: at 4096 bytes (512 rounds per string) the entry program
    /// took 47 ms to load; at 512 it is a few hundred instructions. Python file and function names are shorter.
    /// </summary>
    public const int MaxHashedLength = 512;

    /// <summary>
    /// R1 = the fingerprint of the <paramref name="length"/> bytes (a register; more than <see cref="MaxHashedLength"/>: none) at record offset
    /// <paramref name="start"/> (a register, at most MaxStringLength) + <paramref name="stringsAt"/> of <paramref name="record"/>:
    /// a multiplicative hash of them, 8 at a time, and of their count, with bit 63 set (never 0). Jumps to
    /// <paramref name="none"/> for bytes that would end past <paramref name="limit"/> (only pairs of strings thousands of
    /// bytes long). Clobbers R0–R5.
    /// </summary>
    public static void Emit(InstructionBuilder code, Register record, int stringsAt, Register start, Register length, int limit, string none)
    {
        if (Pyprobe.Bpf.Features.KernelFeatures.HasBpfLoop) EmitWithLoopHelper(code, record, stringsAt, start, length, limit, none);
        else EmitUnrolled(code, record, stringsAt, start, length, limit, none);
    }

    /// <summary>Bytes of the callback's context on the caller's stack: the record, start, length, the hash so far.</summary>
    private const int LoopContextSize = 32;

    /// <summary>
    /// The same hash through bpf_loop: the verifier checks the round once, as a callback, instead of once per possible
    /// round (the unrolled loop was three quarters of the eval-frame entry program's 9,230 processed instructions).
    /// </summary>
    internal static void EmitWithLoopHelper(InstructionBuilder code, Register record, int stringsAt, Register start, Register length, int limit, string none)
    {
        var context = code.Stack.Allocate(LoopContextSize, "fingerprint context");
        var callback = $"fingerprint_round_{stringsAt}_{limit}";
        code.Mov64(Register.R4, start).Mov64(Register.R5, length)
            .JumpIf(JumpCondition.Greater, Register.R4, UsdtEventLayout.MaxStringLength, none)
            .JumpIf(JumpCondition.Greater, Register.R5, MaxHashedLength, none)
            .Mov64(Register.R1, Register.R4).Add64(Register.R1, Register.R5)
            .JumpIf(JumpCondition.Greater, Register.R1, limit, none)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, context, record)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 8), Register.R4)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 16), Register.R5)
            .LoadImm64(Register.R1, unchecked((long)0xCBF29CE484222325))
            .Xor64(Register.R1, Register.R5)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(context + 24), Register.R1)
            .Mov64(Register.R1, Register.R5).Add64(Register.R1, 7).Rsh64(Register.R1, 3);
        LoopCall.Emit(code, callback, context)
            // A round whose word would pass the record's end left 0: no fingerprint, as in the unrolled loop.
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(context + 24))
            .JumpIf(JumpCondition.Equal, Register.R1, 0, none)
            .Mov64(Register.R0, 0).Mov64(Register.R2, 0).Mov64(Register.R3, 0).Mov64(Register.R4, 0).Mov64(Register.R5, 0)
            .LoadImm64(Register.R2, long.MinValue)
            .Or64(Register.R1, Register.R2)
            .Mov64(Register.R2, 0);
        code.Subprogram(callback, round =>
        {
            // R1 = the round (bytes 8 × R1 on), R2 = the context; R0 = 1 stops the loop.
            var labels = round.Scope("round");
            string stop = labels["stop"], whole = labels["whole"], fail = labels["fail"];
            round.Mov64(Register.R6, Register.R2)
                .Mov64(Register.R3, Register.R1).Lsh64(Register.R3, 3)
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.R6, 16)
                .JumpIf(JumpCondition.GreaterOrEqual, Register.R3, Register.R5, stop)
                .JumpIf(JumpCondition.Greater, Register.R5, MaxHashedLength, fail)
                .LoadMem(MemorySize.DoubleWord, Register.R2, Register.R6, 8)
                .JumpIf(JumpCondition.Greater, Register.R2, UsdtEventLayout.MaxStringLength, fail)
                .Add64(Register.R2, Register.R3)
                .JumpIf(JumpCondition.Greater, Register.R2, limit - 8, fail)
                .LoadMem(MemorySize.DoubleWord, Register.R4, Register.R6, 0)
                .Add64(Register.R4, Register.R2)
                .LoadMem(MemorySize.DoubleWord, Register.R0, Register.R4, (short)stringsAt)
                .Mov64(Register.R2, Register.R3).Add64(Register.R2, 8)
                .JumpIf(JumpCondition.LessOrEqual, Register.R2, Register.R5, whole)
                .Sub64(Register.R2, Register.R5)
                .Lsh64(Register.R2, 3)
                .Lsh64(Register.R0, Register.R2)
                .Label(whole)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R6, 24)
                .Xor64(Register.R1, Register.R0)
                .LoadImm64(Register.R2, unchecked((long)0x9E3779B97F4A7C15))
                .Mul64(Register.R1, Register.R2)
                .Mov64(Register.R2, Register.R1).Rsh64(Register.R2, 29)
                .Xor64(Register.R1, Register.R2)
                .StoreMem(MemorySize.DoubleWord, Register.R6, 24, Register.R1)
                .Mov64(Register.R0, 0)
                .Exit()
                .Label(fail)
                .StoreImm(MemorySize.DoubleWord, Register.R6, 24, 0)
                .Label(stop)
                .Mov64(Register.R0, 1)
                .Exit();
        });
    }

    /// <summary>The hash as a loop the verifier walks round by round (kernels without bpf_loop).</summary>
    internal static void EmitUnrolled(InstructionBuilder code, Register record, int stringsAt, Register start, Register length, int limit, string none)
    {
        var labels = code.Scope("fingerprint");
        string loop = labels["loop"], whole = labels["whole"], done = labels["done"];
        code.Mov64(Register.R4, start).Mov64(Register.R5, length)
            .JumpIf(JumpCondition.Greater, Register.R4, UsdtEventLayout.MaxStringLength, none)
            .JumpIf(JumpCondition.Greater, Register.R5, MaxHashedLength, none)
            .Mov64(Register.R1, Register.R4).Add64(Register.R1, Register.R5)
            .JumpIf(JumpCondition.Greater, Register.R1, limit, none)
            .LoadImm64(Register.R1, unchecked((long)0xCBF29CE484222325))
            .Xor64(Register.R1, Register.R5)
            .Mov64(Register.R3, 0)
            .Label(loop)
            .JumpIf(JumpCondition.GreaterOrEqual, Register.R3, Register.R5, done)
            // The word at start + i; past the string's end its high bytes are whatever follows, so they are shifted out.
            .Mov64(Register.R2, Register.R4).Add64(Register.R2, Register.R3)
            .JumpIf(JumpCondition.Greater, Register.R2, limit - 8, none)
            .Add64(Register.R2, record)
            .LoadMem(MemorySize.DoubleWord, Register.R0, Register.R2, (short)stringsAt)
            .Mov64(Register.R2, Register.R3).Add64(Register.R2, 8)
            .JumpIf(JumpCondition.LessOrEqual, Register.R2, Register.R5, whole)
            .Sub64(Register.R2, Register.R5)
            .Lsh64(Register.R2, 3)
            .Lsh64(Register.R0, Register.R2)
            .Label(whole)
            .Xor64(Register.R1, Register.R0)
            .LoadImm64(Register.R2, unchecked((long)0x9E3779B97F4A7C15))
            .Mul64(Register.R1, Register.R2)
            .Mov64(Register.R2, Register.R1).Rsh64(Register.R2, 29)
            .Xor64(Register.R1, Register.R2)
            .Add64(Register.R3, 8)
            .Jump(loop)
            .Label(done)
            // Nothing of the loop's bounds stays in a register: the verifier then sees one state after the loop, not
            // one per length it walked (each would have it check the rest of the program again).
            .Mov64(Register.R0, 0).Mov64(Register.R3, 0).Mov64(Register.R4, 0).Mov64(Register.R5, 0)
            .LoadImm64(Register.R2, long.MinValue)
            .Or64(Register.R1, Register.R2);
    }


    /// <summary>
    /// After both strings of a two-string record were copied (<paramref name="scratch"/> + <see cref="EventProgramParts.Field"/>):
    /// string j gets a fingerprint of its bytes when they are a whole str's — its copy is as long as the length at
    /// <paramref name="eligible"/> + 4j (a u32 stack slot, -1 for a string that cannot be named by its address) and was
    /// not cut — and otherwise keeps its fingerprint field, which must be 0. Zeroes R0–R5 and <paramref name="clear"/>
    /// before the hashing loops, so every path reaches them in one state and the verifier walks each loop once
    /// (192k instructions verified, ~150 ms of attach, in the eval-frame program before it did so).
    /// </summary>
    public static void EmitForCopiedPair(InstructionBuilder code, UsdtEventLayout layout, Register scratch, short eligible, Register clear)
    {
        short Field(int recordOffset) => EventProgramParts.Field(recordOffset);
        // Marked 1 for now: a failed or short copy must not be what user space remembers.
        for (var j = 0; j < 2; j++)
        {
            var none = code.Scope("copied")["none"];
            code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, (short)(eligible + 4 * j))
                .LoadMem(MemorySize.HalfWord, Register.R2, scratch, Field(layout.LengthOffset(j)))
                .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, none)
                .LoadMem(MemorySize.Word, Register.R1, scratch, Field(UsdtEventLayout.TruncatedOffset))
                .And64(Register.R1, 1 << j)
                .JumpIf(JumpCondition.NotEqual, Register.R1, 0, none)
                .StoreImm(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(j)), 1)
                .Label(none);
        }
        code.Mov64(Register.R0, 0).Mov64(Register.R1, 0).Mov64(Register.R2, 0).Mov64(Register.R3, 0).Mov64(Register.R4, 0).Mov64(Register.R5, 0)
            .Mov64(clear, 0);
        var capacity = layout.MaxRecordSize - layout.StringsOffset;
        for (var j = 0; j < 2; j++)
        {
            var scope = code.Scope("hash");
            string none = scope["none"], next = scope["next"];
            code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, Field(layout.FingerprintOffset(j)))
                .JumpIf(JumpCondition.Equal, Register.R1, 0, next);
            // Where string j's bytes start among the record's strings: after string 0's.
            if (j == 0) code.Mov64(Register.R2, 0);
            else code.LoadMem(MemorySize.HalfWord, Register.R2, scratch, Field(layout.LengthOffset(0)));
            code.LoadMem(MemorySize.HalfWord, Register.R3, scratch, Field(layout.LengthOffset(j)));
            Emit(code, scratch, Field(layout.StringsOffset), Register.R2, Register.R3, capacity, none);
            code.StoreMem(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(j)), Register.R1)
                .Jump(next)
                .Label(none)
                .StoreImm(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(j)), 0)
                .Label(next);
        }
    }
}
