using System.Runtime.CompilerServices;
using Iced.Intel;
using Instruction = Iced.Intel.Instruction;
using Register = Iced.Intel.Register;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// Where 3.13's specialised class calls run <c>__init__</c> unseen by the eval-frame hook (<see cref="CPythonFacts.InlineInit"/>),
/// as file addresses: <paramref name="Allocation"/> is the call with which CALL_ALLOC_AND_ENTER_INIT allocates the new
/// object (the class in rdi; after it the instruction pushes the _Py_InitCleanup shim and the <c>__init__</c> frame and
/// jumps into it, always), <paramref name="FrameClear"/> is _PyEval_FrameClearAndPop (past an endbr64), through which
/// every frame of the interpreter's own ends, by return or by exception — the inline <c>__init__</c>'s among them.
/// </summary>
/// <remarks>
/// _PyType_NewManagedObject is a local symbol of libpython, and Debian's LTO build inlines it: the allocation is found
/// by the instruction's own reads instead — the class's cached <c>__init__</c> (<see cref="InlineInitLayout.HeapTypeInit"/>),
/// then its func_code, then the first call, made with the class in rdi.
/// </remarks>
public sealed record InlineInitSites(ulong Allocation, ulong FrameClear)
{
    /// <summary>Instructions from the read of the cached <c>__init__</c> to the allocation's call at most (about 30 on gcc's builds).</summary>
    private const int HandlerReach = 80;

    private static readonly ConditionalWeakTable<ElfImage, Found> Cache = new();

    private sealed record Found(InlineInitSites? Sites, string? Reason);

    /// <summary>
    /// The sites in <paramref name="elf"/> (a CPython 3.13 binary with _PyEval_EvalFrameDefault), or null with the reason
    /// when this build's code does not show them. Decoded once per image.
    /// </summary>
    public static InlineInitSites? Find(ElfImage elf, InlineInitLayout layout, out string? reason)
    {
        var found = Cache.GetValue(elf, image => Locate(image, layout));
        reason = found.Reason;
        return found.Sites;
    }

    private static Found Locate(ElfImage elf, InlineInitLayout layout)
    {
        var eval = elf.FindSymbols("_PyEval_EvalFrameDefault").FirstOrDefault(s => s.IsFunction && s.IsDefined && s.Size > 0);
        if (eval is null) return new(null, "_PyEval_EvalFrameDefault has no size");
        var clear = elf.FindSymbols("_PyEval_FrameClearAndPop").FirstOrDefault(s => s.IsFunction && s.IsDefined);
        if (clear is null) return new(null, "the binary does not export _PyEval_FrameClearAndPop");
        var allocations = AllocationCalls(eval.Value, elf.ReadVirtual(eval.Value, checked((int)eval.Size)), layout);
        if (allocations.Count != 1)
            return new(null, $"found {allocations.Count} places where CALL_ALLOC_AND_ENTER_INIT could allocate, not one");
        return new(new InlineInitSites(allocations[0], PastEndbr64(elf, clear.Value)), null);
    }

    /// <summary>
    /// Every call in the function at <paramref name="start"/> that follows a read of a class's cached <c>__init__</c>
    /// (<c>mov r, [type + HeapTypeInit]</c>) and of that function's code (<c>[r + FunctionCode]</c>) on the straight path,
    /// with the class still in rdi.
    /// </summary>
    private static List<ulong> AllocationCalls(ulong start, byte[] body, InlineInitLayout layout)
    {
        var instructions = new List<Instruction>(body.Length / 4);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(body), start);
        while (decoder.IP < start + (ulong)body.Length)
        {
            decoder.Decode(out var instruction);
            instructions.Add(instruction);
        }
        var calls = new List<ulong>();
        for (var i = 0; i < instructions.Count; i++)
        {
            var read = instructions[i];
            if (!IsLoad(read, layout.HeapTypeInit) || read.MemoryBase == Register.RIP) continue;
            if (FollowToCall(instructions, i, layout) is ulong call) calls.Add(call);
        }
        return calls.Distinct().ToList();
    }

    /// <summary>From the read of the cached <c>__init__</c> at <paramref name="at"/>, the allocation's call, or null.</summary>
    private static ulong? FollowToCall(List<Instruction> instructions, int at, InlineInitLayout layout)
    {
        var info = new InstructionInfoFactory();
        // Registers holding the class (the base of the read), and the cached __init__ (its destination).
        var type = new HashSet<Register> { instructions[at].MemoryBase.GetFullRegister() };
        var init = instructions[at].Op0Register.GetFullRegister();
        var codeRead = false;
        for (var i = at + 1; i < instructions.Count && i <= at + HandlerReach; i++)
        {
            var instruction = instructions[i];
            if (instruction.IsInvalid) return null;
            if (instruction.FlowControl == FlowControl.Call)
                return codeRead && type.Contains(Register.RDI) && instruction.Op0Kind == OpKind.NearBranch64 ? instruction.IP : null;
            if (instruction.FlowControl is FlowControl.UnconditionalBranch or FlowControl.IndirectBranch or FlowControl.Return or FlowControl.Interrupt)
                return null;
            if (IsLoad(instruction, layout.FunctionCode) && instruction.MemoryBase.GetFullRegister() == init) codeRead = true;
            var copiesType = instruction.Mnemonic == Mnemonic.Mov && instruction.Op0Kind == OpKind.Register && instruction.Op1Kind == OpKind.Register
                && instruction.Op0Register.GetSize() == 8 && type.Contains(instruction.Op1Register);
            foreach (var used in info.GetInfo(instruction).GetUsedRegisters())
            {
                if (used.Access is not (OpAccess.Write or OpAccess.ReadWrite or OpAccess.CondWrite or OpAccess.ReadCondWrite)) continue;
                var full = used.Register.GetFullRegister();
                type.Remove(full);
                if (full == init) init = Register.None;
            }
            if (copiesType) type.Add(instruction.Op0Register);
        }
        return null;
    }

    /// <summary><c>mov r64, [base + displacement]</c>.</summary>
    private static bool IsLoad(in Instruction instruction, int displacement) =>
        instruction.Mnemonic == Mnemonic.Mov && instruction.OpCount == 2 && instruction.Op0Kind == OpKind.Register
        && instruction.Op0Register.GetSize() == 8 && instruction.Op1Kind == OpKind.Memory
        && instruction.MemoryIndex == Register.None && instruction.MemoryDisplacement64 == (ulong)displacement;

    private static ulong PastEndbr64(ElfImage elf, ulong function)
    {
        var first = elf.ReadVirtual(function, 4);
        return first is [0xf3, 0x0f, 0x1e, 0xfa] ? function + 4 : function;
    }
}
