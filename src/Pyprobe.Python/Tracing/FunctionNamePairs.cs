using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>
/// What makes a <see cref="StringPairMemo"/> right for the USDT function probes (function__entry, function__return,
/// line) of CPython 3.8–3.11 and 3.15 (whose restored probes pass the same two strings; 3.12–3.14 have none): their file
/// and function name arguments are the UTF-8 bytes of the frame's code object's co_filename and co_name, which for a
/// compact ASCII str lie inside the str object (<see cref="StrLayout.AsciiData"/> past it; only such strings get a
/// fingerprint, so only they are remembered). The code object holds both strs, so a
/// pair stays right while any code object with that pair lives: the pair is dropped where each such code object is freed
/// (a uprobe on PyCode_Type's tp_dealloc, <see cref="CodeDeallocSite"/>), and after the last one the strs may go. A
/// process's pairs all go at exec and exit (the epochs of <see cref="CodeObjectMemoMaps"/>).
/// </summary>
public static class FunctionNamePairs
{
    /// <summary>Whether <paramref name="probe"/>'s strings are a code object's (file, name) pair.</summary>
    public static bool Carries(PythonProbe probe) => probe.Name is "function__entry" or "function__return" or "line";

    /// <summary>
    /// The file address to put the forgetting program on in <paramref name="target"/>'s binary, the code object's layout
    /// and the str's; null where the memo cannot be kept right (a version whose probes pass other strings, no known
    /// layout, or a binary that does not say where code objects die): then the strings are interned as before.
    /// </summary>
    public static (ulong Site, CodeLayout Code, StrLayout Str)? Where(TraceTarget target)
    {
        if (target.Version is not { Major: 3, Minor: (>= 8 and <= 11) or >= 15 } version || CPythonFacts.For(version) is not { } facts) return null;
        if (CodeDeallocSite.Find(target.Binary.Elf) is not ulong site || target.CodeObjectLayout(facts) is not { } code) return null;
        return (site, code, facts.Str);
    }

    /// <summary>
    /// The uprobe on tp_dealloc: the code object in rdi is dying, so the pair of its co_filename and co_name goes from the
    /// memo (two 8-byte reads of the code object; a code object whose strs cannot be read was never remembered either).
    /// </summary>
    public static AssembledProgram ForgetProgram(CodeLayout code, int asciiData)
    {
        var program = new InstructionBuilder();
        var codeObject = program.Stack.Allocate(8, "code object");
        var first = program.Stack.Allocate(8, "filename bytes");
        var second = program.Stack.Allocate(8, "name bytes");
        CodeDeallocSite.EmitDyingCodeObject(program, codeObject);
        foreach (var (slot, offset) in new[] { (first, code.Filename), (second, code.Name) })
        {
            program.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, slot)
                .Mov64(Register.R2, 8)
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, codeObject)
                .Add64(Register.R3, offset)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, "out")
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, slot)
                .Add64(Register.R1, asciiData)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, slot, Register.R1);
        }
        StringPairMemo.EmitForget(program, Register.R7, first, second, "out");
        program.Label("out")
            .Mov64(Register.R0, 0)
            .Exit();
        return program.Assemble();
    }
}
