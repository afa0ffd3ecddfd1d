namespace Pyprobe.Python.EvalFrame;

/// <summary>Stack slots (u64 each) holding a code object's co_filename and co_qualname object pointers.</summary>
public sealed record StrObjectSlots(short Filename, short Name);

/// <summary>
/// The eval-frame programs' memo of names (3.12+): LRU hash (tgid, code object address) → what the last event of that
/// code object learned about its two strs, so that the next activations send the names as interned strings (address
/// and hash, no bytes: <see cref="Usdt.CodeGen.UsdtEventLayout.InternedLength"/>) without reading either str again.
/// That saves four helper calls per event (two header reads, two string copies), most of what the program costs.
/// </summary>
/// <remarks>
/// An address alone does not name a code object: pymalloc hands a freed code object's block, and its strs' blocks, to
/// the next ones (compile or exec in a loop). A hit therefore needs the code object's co_version (a counter value each
/// new code object gets; 0 once exhausted, then never memoised) and both str pointers, all read with the span the
/// program reads anyway, to equal what the memo holds; the strs themselves cannot change while the code object holds
/// them. Only compact ASCII strs copied whole are memoised: their bytes sit at a fixed offset from
/// the object, and (address, hash) is the key user space knows them by (<see cref="Tracing.SentStrings"/>, which learnt
/// them from the record that carried the bytes, or reads them from the process when that record comes second). A str
/// whose hash was never computed (3.12's co_filename, usually) gets <see cref="SyntheticFingerprint"/> instead. A value
/// can be rewritten by another CPU while it is read (preallocated LRU elements are reused), so it carries a check word
/// (the xor of the others) and a torn value is a miss.
/// </remarks>
public static class CodeObjectMemo
{
    /// <summary>The map's name in the programs.</summary>
    public const string MapName = "efmemo";

    /// <summary>u32 tgid, u32 0, u64 code object address.</summary>
    public const int KeySize = 16;

    /// <summary>u32 co_version, u32 0, u64 co_filename, u64 co_qualname, u64 filename hash, u64 name hash, u64 check.</summary>
    public const int ValueSize = 48;

    /// <summary>Code objects remembered per session before the least recently used is read again.</summary>
    public const uint Capacity = 32768;

    private const short VersionAt = 0, FilenameAt = 8, NameAt = 16, CheckAt = 40;

    /// <summary>Where string <paramref name="index"/>'s hash lies in the value (0: filename, 1: name).</summary>
    public static short HashAt(int index) => (short)(24 + 8 * index);

    /// <summary>Whether the memo can serve this layout: a co_version to tell code objects apart, and co_qualname.</summary>
    public static bool Serves(CodeLayout layout) => layout.Version is not null && layout.Qualname is not null;

    /// <summary>
    /// The fingerprint of string <paramref name="index"/> of the code object of version <paramref name="version"/> when
    /// its str has no hash yet: user space keys strings by (pid, address, fingerprint), and while that code object lives
    /// its strs stay where they are, while a later one gets another version. Bit 63 set, so it is never 0.
    /// </summary>
    public static ulong SyntheticFingerprint(uint version, int index) => 1UL << 63 | (ulong)version << 1 | (uint)index;

    /// <summary>R1 = <see cref="SyntheticFingerprint"/> of string <paramref name="index"/>; jumps to <paramref name="none"/> when co_version is 0 (exhausted: no identity). Clobbers R1, R2.</summary>
    public static void EmitSyntheticFingerprint(InstructionBuilder code, CodeObjectSpan span, int index, string none) =>
        code.LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, span.At(span.Layout.Version ?? throw new ArgumentException("the layout has no co_version")))
            .JumpIf(JumpCondition.Equal, Register.R1, 0, none)
            .Lsh64(Register.R1, 1)
            .Or64(Register.R1, index)
            .LoadImm64(Register.R2, long.MinValue)
            .Or64(Register.R1, Register.R2);

    /// <summary>
    /// Drops every entry of process <paramref name="tgid"/>: called while a new interpreter of it is stopped before it
    /// runs any code (<see cref="InterpreterCreationWatch"/>). From 3.13 each interpreter counts co_version from its own
    /// start, so a subinterpreter made after another ended can give a code object the version a dead one had, at the
    /// address it had (same allocations, same arenas mapped again); without its predecessors' entries it cannot match one.
    /// Returns how many were dropped.
    /// </summary>
    public static int Forget(BpfMap memo, int tgid)
    {
        var keys = new List<byte[]>();
        Span<byte> key = stackalloc byte[KeySize];
        Span<byte> next = stackalloc byte[KeySize];
        var first = true;
        while (memo.TryGetNextKey(first ? [] : key, next))
        {
            first = false;
            if (BinaryPrimitives.ReadInt32LittleEndian(next) == tgid) keys.Add(next.ToArray());
            next.CopyTo(key);
        }
        return keys.Count(k => memo.Delete(k));
    }

    /// <summary>Writes the key of the code object in <paramref name="codeSlot"/> for this process onto the stack and returns its slot.</summary>
    public static short EmitKey(InstructionBuilder code, Register pidTgid, short codeSlot)
    {
        var key = code.Stack.Allocate(KeySize, "memo key");
        code.Mov64(Register.R1, pidTgid).Rsh64(Register.R1, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, key, Register.R1)
            .StoreImm(MemorySize.Word, Register.FramePointer, (short)(key + 4), 0)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(key + 8), Register.R1);
        return key;
    }

    /// <summary>
    /// R0 = the memo's value for <paramref name="key"/> when it still describes the code object whose span was read
    /// (same non-zero co_version, same two str pointers, check word intact); otherwise jumps to <paramref name="miss"/>.
    /// Clobbers R0–R5.
    /// </summary>
    public static void EmitFind(InstructionBuilder code, short key, CodeObjectSpan span, StrObjectSlots objects, string miss)
    {
        var version = span.At(span.Layout.Version ?? throw new ArgumentException("the layout has no co_version"));
        MapLookup.Emit(code, MapName, key, miss)
            .LoadMem(MemorySize.Word, Register.R2, Register.FramePointer, version)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, miss)
            .LoadMem(MemorySize.Word, Register.R1, Register.R0, VersionAt)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, miss);
        foreach (var (at, slot) in new[] { (FilenameAt, objects.Filename), (NameAt, objects.Name) })
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.R0, at)
                .LoadMem(MemorySize.DoubleWord, Register.R4, Register.FramePointer, slot)
                .JumpIf(JumpCondition.NotEqual, Register.R3, Register.R4, miss)
                .Xor64(Register.R1, Register.R3);
        for (var i = 0; i < 2; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.R0, HashAt(i))
                .Xor64(Register.R1, Register.R3);
        code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.R0, CheckAt)
            .JumpIf(JumpCondition.NotEqual, Register.R1, Register.R3, miss);
    }

    /// <summary>
    /// Remembers the code object at <paramref name="key"/> with the two hashes in <paramref name="hashes"/> (u64 slots of
    /// the record, via <paramref name="hashesBase"/>); skipped when its co_version is 0. Clobbers R0–R5.
    /// </summary>
    public static void EmitRemember(InstructionBuilder code, short key, CodeObjectSpan span, StrObjectSlots objects, Register hashesBase, short[] hashes)
    {
        var version = span.At(span.Layout.Version ?? throw new ArgumentException("the layout has no co_version"));
        var value = code.Stack.Allocate(ValueSize, "memo value");
        var skip = code.Scope("memo")["skip"];
        code.LoadMem(MemorySize.Word, Register.R0, Register.FramePointer, version)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, skip)
            .StoreMem(MemorySize.Word, Register.FramePointer, (short)(value + VersionAt), Register.R0)
            .StoreImm(MemorySize.Word, Register.FramePointer, (short)(value + VersionAt + 4), 0);
        foreach (var (at, slot) in new[] { (FilenameAt, objects.Filename), (NameAt, objects.Name) })
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + at), Register.R1)
                .Xor64(Register.R0, Register.R1);
        for (var i = 0; i < 2; i++)
            code.LoadMem(MemorySize.DoubleWord, Register.R1, hashesBase, hashes[i])
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + HashAt(i)), Register.R1)
                .Xor64(Register.R0, Register.R1);
        code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(value + CheckAt), Register.R0)
            .LoadMap(Register.R1, MapName)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, value)
            .Mov64(Register.R4, 0) // BPF_ANY: a stale value (another code object once at this address) is replaced
            .Call(HelperFunction.MapUpdateElem)
            .Label(skip);
    }
}
