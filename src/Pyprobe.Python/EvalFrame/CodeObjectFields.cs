using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.EvalFrame;

/// <summary>Stack slots (u64 each) that receive what identifies a code object, as the USDT function probes give it.</summary>
/// <param name="Filename">Address of co_filename's bytes (0 when unreadable: an empty string).</param>
/// <param name="Name">Address of co_qualname's (co_name's before 3.11) bytes.</param>
/// <param name="FirstLine">co_firstlineno, zero-extended.</param>
/// <param name="Forms">
/// Where to say how each str's bytes are held (<see cref="StrFormSlots"/>); without them a str that is not ASCII is
/// named by its cached UTF-8 copy, which CPython makes only when asked (NULL, an empty name, when it never was).
/// </param>
public sealed record CodeObjectSlots(short Filename, short Name, short FirstLine, StrFormSlots? Forms = null);

/// <summary>
/// Stack slots (u64 each) saying what lies at a str's address: <see cref="Usdt.CodeGen.StringEncoding"/> &lt;&lt; 32 | the
/// byte count of its characters (UTF-8 for an ASCII str; else as CPython holds them); 0 for no str.
/// <see cref="CodeObjectFields.EmitSizedCopy"/> copies them.
/// </summary>
public sealed record StrFormSlots(short Filename, short Name);

/// <summary>Where a code object's span was read onto the stack (see <see cref="CodeObjectFields.EmitReadSpan"/>).</summary>
/// <param name="Layout">The code object's layout.</param>
/// <param name="Slot">The stack slot of the span's first byte.</param>
/// <param name="First">The code object offset the span starts at.</param>
/// <param name="Flags">The stack slot of co_flags (a u32), when it was read with the span.</param>
public sealed record CodeObjectSpan(CodeLayout Layout, short Slot, int First, short? Flags)
{
    /// <summary>The stack slot of the code object's field at <paramref name="offset"/>.</summary>
    public short At(int offset) => (short)(Slot + offset - First);
}

/// <summary>
/// Reads a code object's filename, name and first line in BPF with the runtime model's layouts — the fragment the
/// eval-frame event program and the call-statistics programs share, so a function is named and keyed the same way
/// by every command. Strings are left as pointers to their bytes (copied later, only when needed).
/// </summary>
/// <remarks>
/// Each bpf_probe_read_user costs the traced program on every call, so the fields are read in as few reads as the
/// layout allows: one for the span of the code object that holds the two str pointers and the first line (64–80 bytes
/// on 3.8–3.15), one per str for its state (and one more only for a str that is not compact ASCII, for its cached UTF-8
/// pointer). On CPython 3.9 and kernel 6.18 each read costs the program about 90 ns.
/// </remarks>
public static class CodeObjectFields
{
    /// <summary>Reads the code object whose address is in stack slot <paramref name="codeSlot"/> into <paramref name="into"/>. Clobbers R0–R5.</summary>
    public static void Emit(InstructionBuilder code, CPythonFacts facts, RuntimeLayout layout, short codeSlot, CodeObjectSlots into) =>
        EmitFields(code, facts, EmitReadSpan(code, layout, codeSlot, withFlags: false), into);

    /// <summary>
    /// Reads the span of the code object in <paramref name="codeSlot"/> that holds its filename, name and first line (and
    /// co_flags when <paramref name="withFlags"/>, which on 3.11+ lies just below them: one read instead of two) onto the
    /// stack; a failed read leaves zeros. Clobbers R0–R5.
    /// </summary>
    public static CodeObjectSpan EmitReadSpan(InstructionBuilder code, RuntimeLayout layout, short codeSlot, bool withFlags)
    {
        var c = layout.Code;
        var nameField = c.Qualname ?? c.Name;
        // From the lowest field to the end of the highest; it starts 8-aligned so that the pointers land aligned in the
        // stack slot (the verifier refuses a misaligned 8-byte stack load).
        var lowest = Math.Min(c.FirstLineNo, Math.Min(c.Filename, nameField));
        if (withFlags) lowest = Math.Min(lowest, FlagsOffset);
        var end = Math.Max(c.FirstLineNo + 4, Math.Max(c.Filename + 8, nameField + 8));
        var first = lowest & ~7;
        var span = code.Stack.Allocate(end - first, "code object fields");
        var read = code.Scope("code")["read"];
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, span)
            .Mov64(Register.R2, end - first)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeSlot)
            .Add64(Register.R3, first)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, read);
        // A failed read leaves garbage: 0 reads as an empty string, line 0, no flags.
        for (var offset = 0; offset < end - first; offset += 8)
            code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(span + offset), 0);
        code.Label(read);
        return new CodeObjectSpan(c, span, first, withFlags ? (short)(span + FlagsOffset - first) : null);
    }

    /// <summary>
    /// PyCodeObject.co_flags on 3.11–3.15: after the var-object header, co_consts, co_names and co_exceptiontable.
    /// (Only read where generator creation runs a frame of its own, 3.11+.)
    /// </summary>
    public const int FlagsOffset = 48;

    /// <summary>Fills <paramref name="into"/> from a span read by <see cref="EmitReadSpan"/>: the str pointers' bytes and the first line. Clobbers R0–R5.</summary>
    public static void EmitFields(InstructionBuilder code, CPythonFacts facts, CodeObjectSpan span, CodeObjectSlots into)
    {
        var c = span.Layout;
        var nameField = c.Qualname ?? c.Name;
        var filenameObject = code.Stack.Allocate(8, "co_filename");
        var nameObject = code.Stack.Allocate(8, "co_name");
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, span.At(c.Filename))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, filenameObject, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, span.At(nameField))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, nameObject, Register.R1)
            // int co_firstlineno, zero-extended.
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, span.At(c.FirstLineNo))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, into.FirstLine, Register.R1);
        var header = code.Stack.Allocate(StrHeaderSize, "str header");
        EmitStringHeader(code, facts.Str, filenameObject, header, into.Filename, into.Forms?.Filename);
        EmitStringHeader(code, facts.Str, nameObject, header, into.Name, into.Forms?.Name);
    }

    /// <summary>
    /// Reads the frame's code object (the frame pointer in R3, the code field at <paramref name="layout"/>'s offset,
    /// tag bits cleared on 3.14+) into <paramref name="codeSlot"/>; jumps to <paramref name="missing"/> when there is none.
    /// </summary>
    public static void EmitCodeOfFrame(InstructionBuilder code, RuntimeLayout layout, short codeSlot, string missing)
    {
        code.Add64(Register.R3, layout.Frame.Code)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, codeSlot)
            .Mov64(Register.R2, 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, missing)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, codeSlot);
        // 3.14+: a tagged _PyStackRef; the low bits are flags, not address.
        if (layout.Frame.CodeTagMask != 0)
            code.And64(Register.R1, ~(int)layout.Frame.CodeTagMask)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, codeSlot, Register.R1);
        code.JumpIf(JumpCondition.Equal, Register.R1, 0, missing);
    }

    /// <summary>Bytes of a str's header read by <see cref="EmitStringHeader"/>: length, hash, state (4 of its 8).</summary>
    public const int StrHeaderSize = 24;

    /// <summary>
    /// <paramref name="dataSlot"/> = where the bytes of the str at <paramref name="objectSlot"/> are: inline after the
    /// header for a compact ASCII str; for another compact str its characters inline after the longer header, with
    /// <paramref name="formSlot"/> saying what they are (<see cref="StrFormSlots"/>, also for an ASCII str), or without a
    /// form slot its cached UTF-8 copy (NULL when never asked for: an empty name). The str's length, hash and state are read in one read into
    /// <paramref name="headerSlot"/> (<see cref="StrHeaderSize"/> bytes, 8-aligned; zeros when there is no str): the
    /// same cost as reading the state alone. Clobbers R0–R5.
    /// </summary>
    public static void EmitStringHeader(InstructionBuilder code, StrLayout str, short objectSlot, short headerSlot, short dataSlot, short? formSlot = null)
    {
        var scope = code.Scope("strdata");
        string ascii = scope["ascii"], done = scope["done"];
        var state = (short)(headerSlot + str.State - str.Length);
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, dataSlot, 0);
        if (formSlot is short clear) code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, clear, 0);
        for (var offset = 0; offset < StrHeaderSize; offset += 8)
            code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(headerSlot + offset), 0);
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, headerSlot)
            .Mov64(Register.R2, StrHeaderSize)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, objectSlot)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, done)
            .Add64(Register.R3, str.Length)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, done)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, state);
        if (formSlot is null)
            code.Mov64(Register.R2, Register.R1)
                .And64(Register.R2, (int)StrLayout.CompactAsciiBits)
                .JumpIf(JumpCondition.Equal, Register.R2, (int)StrLayout.CompactAsciiBits, ascii);
        code.Mov64(Register.R2, Register.R1)
            .And64(Register.R2, (int)StrLayout.CompactBit)
            .JumpIf(JumpCondition.Equal, Register.R2, 0, done);
        if (formSlot is short form)
        {
            // Any compact str, without a branch (so the verifier meets one state here, not one per kind): its bytes after
            // PyASCIIObject when ASCII, else after PyCompactUnicodeObject; kind (1, 2 or 4) bytes a character; encoding
            // = kind − kind / 4 − ascii (ASCII 0: UTF-8; else 1 Latin-1, 2 UCS-2, 3 UCS-4).
            code.LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, headerSlot)
                .JumpIf(JumpCondition.Greater, Register.R0, 1 << 24, done)
                .Mov64(Register.R3, Register.R1).Rsh64(Register.R3, 6).And64(Register.R3, 1)
                .Mov64(Register.R4, Register.R1).Rsh64(Register.R4, StrLayout.KindShift).And64(Register.R4, (int)StrLayout.KindMask)
                .Mul64(Register.R0, Register.R4)
                .Mov64(Register.R2, Register.R4).Rsh64(Register.R2, 2)
                .Mov64(Register.R5, Register.R4).Sub64(Register.R5, Register.R2).Sub64(Register.R5, Register.R3)
                .Lsh64(Register.R5, 32)
                .Or64(Register.R5, Register.R0)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, form, Register.R5)
                .Mul64(Register.R3, str.CompactData - str.AsciiData)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, objectSlot)
                .Add64(Register.R1, str.CompactData)
                .Sub64(Register.R1, Register.R3)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, dataSlot, Register.R1)
                .Label(done);
            return;
        }
        // PyCompactUnicodeObject: the header, utf8_length, then char *utf8.
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, dataSlot)
            .Mov64(Register.R2, 8)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, objectSlot)
            .Add64(Register.R3, str.AsciiData + 8)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, done)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, dataSlot, 0)
            .Jump(done)
            .Label(ascii)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, objectSlot)
            .Add64(Register.R1, str.AsciiData)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, dataSlot, Register.R1)
            .Label(done);
    }

    /// <summary>
    /// Copies the str whose bytes' address is in R3 into the record: the byte count <paramref name="formSlot"/> gives
    /// (<see cref="StrFormSlots"/>), cut to <paramref name="keep"/> (a multiple of 4, so at a character's end, and marked),
    /// with their encoding put in the flags word at <paramref name="encodingShift"/>; the length into its field and added
    /// to <paramref name="cursor"/>. Branch-free but for bounds the verifier needs (never taken), so that what follows is
    /// checked once, not once per outcome. Clobbers R0–R5.
    /// </summary>
    public static void EmitSizedCopy(InstructionBuilder code, Register record, int dataOffset, Register cursor, int keep, StringFields fields, short formSlot, int encodingShift)
    {
        if (keep % 4 != 0) throw new ArgumentOutOfRangeException(nameof(keep), "a cut must end a character of 1, 2 or 4 bytes");
        var scope = code.Scope("sizedcopy");
        string impossible = scope["impossible"], end = scope["end"];
        var size = code.Stack.Allocate(8, "copy size");
        code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, formSlot)
            // cut = bytes > keep (1 or 0); size = bytes − cut × (bytes − keep).
            .Mov32(Register.R2, Register.R1)
            .Mov64(Register.R5, keep).Sub64(Register.R5, Register.R2).Rsh64(Register.R5, 63)
            .Mov64(Register.R0, Register.R2).Sub64(Register.R0, keep).Mul64(Register.R0, Register.R5)
            .Sub64(Register.R2, Register.R0)
            // The flags word: the encoding, and the cut mark.
            .Rsh64(Register.R1, 32).Lsh64(Register.R1, encodingShift)
            .Lsh64(Register.R5, fields.TruncatedBit)
            .Or64(Register.R1, Register.R5)
            .LoadMem(MemorySize.Word, Register.R4, record, (short)fields.TruncatedOffset)
            .Or64(Register.R4, Register.R1)
            .StoreMem(MemorySize.Word, record, (short)fields.TruncatedOffset, Register.R4)
            .JumpIf(JumpCondition.Greater, Register.R2, keep, impossible)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, size, Register.R2)
            .Mov64(Register.R1, record).Add64(Register.R1, dataOffset)
            .Add64(Register.R1, cursor)
            .Call(HelperFunction.ProbeReadUser)
            // A failed read sends nothing: size × (result == 0).
            .Mov64(Register.R1, Register.R0).Neg64(Register.R1).Or64(Register.R1, Register.R0).Rsh64(Register.R1, 63)
            .Xor64(Register.R1, 1)
            .LoadMem(MemorySize.DoubleWord, Register.R0, Register.FramePointer, size)
            .Mul64(Register.R0, Register.R1)
            .JumpIf(JumpCondition.Greater, Register.R0, keep, impossible)
            .StoreMem(fields.LengthSize, record, (short)fields.LengthOffset, Register.R0)
            .Add64(cursor, Register.R0)
            .Jump(end)
            .Label(impossible)
            .Mov64(Register.R0, 0)
            .Exit()
            .Label(end);
    }
}
