namespace Pyprobe.Python.EvalFrame;

/// <summary>Stack slots (u64 each) that receive what identifies a code object, as the USDT function probes give it.</summary>
/// <param name="Filename">char * of co_filename's UTF-8 bytes (0 when unreadable: an empty string).</param>
/// <param name="Name">char * of co_qualname's (co_name's before 3.11) UTF-8 bytes.</param>
/// <param name="FirstLine">co_firstlineno, zero-extended.</param>
public sealed record CodeObjectSlots(short Filename, short Name, short FirstLine);

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
        var state = code.Stack.Allocate(8, "str state");
        EmitStringData(code, facts.Str, filenameObject, state, into.Filename);
        EmitStringData(code, facts.Str, nameObject, state, into.Name);
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

    /// <summary>
    /// <paramref name="dataSlot"/> = where the UTF-8 bytes of the str at <paramref name="objectSlot"/> are: inline after
    /// the header for a compact ASCII str, else its cached utf8 pointer (NULL when never asked for: an empty name).
    /// </summary>
    private static void EmitStringData(InstructionBuilder code, StrLayout str, short objectSlot, short stateSlot, short dataSlot) =>
        EmitStringData(code, str, objectSlot, stateSlot, str.State, 4, stateSlot, dataSlot);

    /// <summary>Bytes of a str's header read by <see cref="EmitStringHeader"/>: length, hash, state (4 of its 8).</summary>
    public const int StrHeaderSize = 24;

    /// <summary>
    /// As <see cref="EmitStringData"/> (the data pointer into <paramref name="dataSlot"/>), reading the str's length, hash
    /// and state in one read into <paramref name="headerSlot"/> (<see cref="StrHeaderSize"/> bytes, 8-aligned; zeros when
    /// there is no str): the same cost as reading the state alone. Clobbers R0–R5.
    /// </summary>
    public static void EmitStringHeader(InstructionBuilder code, StrLayout str, short objectSlot, short headerSlot, short dataSlot)
    {
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(headerSlot + 8), 0)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, (short)(headerSlot + 16), 0);
        EmitStringData(code, str, objectSlot, headerSlot, str.Length, StrHeaderSize, (short)(headerSlot + str.State - str.Length), dataSlot);
    }

    /// <summary>Reads <paramref name="size"/> bytes of the str from <paramref name="from"/> into <paramref name="readSlot"/>, the state lying at <paramref name="stateSlot"/>.</summary>
    private static void EmitStringData(InstructionBuilder code, StrLayout str, short objectSlot, short readSlot, int from, int size, short stateSlot, short dataSlot)
    {
        var scope = code.Scope("strdata");
        string ascii = scope["ascii"], done = scope["done"];
        code.StoreImm(MemorySize.DoubleWord, Register.FramePointer, dataSlot, 0)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, readSlot, 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, readSlot)
            .Mov64(Register.R2, size)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, objectSlot)
            .JumpIf(JumpCondition.Equal, Register.R3, 0, done)
            .Add64(Register.R3, from)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, done)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, stateSlot)
            .Mov64(Register.R2, Register.R1)
            .And64(Register.R2, (int)StrLayout.CompactAsciiBits)
            .JumpIf(JumpCondition.Equal, Register.R2, (int)StrLayout.CompactAsciiBits, ascii)
            .And64(Register.R1, (int)StrLayout.CompactBit)
            .JumpIf(JumpCondition.Equal, Register.R1, 0, done)
            // PyCompactUnicodeObject: the header, utf8_length, then char *utf8.
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, dataSlot)
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
}
