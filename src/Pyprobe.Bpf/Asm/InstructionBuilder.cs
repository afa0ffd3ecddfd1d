namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Fluent emitter used by code generators: one method per instruction shape, labels by name, then
/// <see cref="Assemble"/>. Every method appends exactly one <see cref="Instruction"/> and returns the builder.
/// </summary>
/// <example>
/// <code>
/// var program = new InstructionBuilder()
///     .Mov64(Register.R6, Register.R1)
///     .LoadMapFd(Register.R1, ringbufFd)
///     .Mov64(Register.R2, 16)
///     .Mov64(Register.R3, 0)
///     .Call(HelperFunction.RingbufReserve)
///     .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
///     // ... fill and submit ...
///     .Label("out")
///     .Mov64(Register.R0, 0)
///     .Exit()
///     .Assemble();
/// </code>
/// </example>
public sealed class InstructionBuilder
{
    private readonly List<Instruction> _instructions = [];
    private readonly List<Action<InstructionBuilder>> _subprograms = [];
    private readonly HashSet<string> _subprogramLabels = [];
    private readonly Dictionary<string, int> _labelIndices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _aliases = new(StringComparer.Ordinal);
    private readonly List<string> _pendingLabels = [];
    private int _scopes;

    /// <summary>Instructions emitted so far; symbols and references are still unresolved labels.</summary>
    public IReadOnlyList<Instruction> Instructions => _instructions;

    /// <summary>Number of 8-byte slots emitted so far (<c>lddw</c> counts 2); equals the next instruction's slot index.</summary>
    public int SlotCount { get; private set; }

    /// <summary>The program's stack: fragments take their slots here instead of numbering them by hand.</summary>
    public StackSlots Stack { get; } = new();

    /// <summary>
    /// Labels private to one emission of a fragment: <c>var l = code.Scope("copy"); code.Jump(l["done"])</c>. Every
    /// call returns a new scope, so a fragment can be emitted several times in one program.
    /// </summary>
    public LabelScope Scope(string fragment) => new($"{fragment}#{++_scopes}");

    /// <summary>
    /// Names the NEXT emitted instruction as a jump target. Labels are resolved at <see cref="Assemble"/>, so forward
    /// jumps may reference a label before it is defined. Several labels may name the same instruction (a fragment's
    /// exit label and its caller's next label).
    /// </summary>
    /// <exception cref="AssemblerException">The label is already defined.</exception>
    public InstructionBuilder Label(string name)
    {
        ValidateLabelName(name);
        if (_labelIndices.TryGetValue(name, out var existing) || _aliases.ContainsKey(name) || _pendingLabels.Contains(name))
        {
            var where = _pendingLabels.Contains(name) ? "the next instruction" : $"instruction {(_aliases.TryGetValue(name, out var primary) ? _labelIndices[primary] : existing)}";
            throw new AssemblerException($"Duplicate label '{name}': already defined at {where}.");
        }

        _pendingLabels.Add(name);
        return this;
    }

    /// <summary>Appends a raw instruction, attaching pending <see cref="Label"/>s to it.</summary>
    public InstructionBuilder Emit(Instruction instruction)
    {
        if (_pendingLabels.Count > 0)
        {
            var primary = instruction.Symbol ?? _pendingLabels[0];
            foreach (var label in _pendingLabels)
            {
                if (label != primary) _aliases[label] = primary;
            }

            instruction = instruction.WithSymbol(primary);
            _pendingLabels.Clear();
        }

        if (instruction.Symbol is { } symbol && !_labelIndices.TryAdd(symbol, _instructions.Count))
        {
            throw new AssemblerException($"Duplicate label '{symbol}': already defined at instruction {_labelIndices[symbol]}.");
        }

        _instructions.Add(instruction);
        SlotCount += instruction.Width;
        return this;
    }

    /// <summary>Resolves labels and encodes the program.</summary>
    /// <exception cref="AssemblerException">A label was defined after the last instruction, a jump refers to an
    /// undefined label, or a jump offset does not fit in 16 bits.</exception>
    public AssembledProgram Assemble()
    {
        // Subprograms go after the main program's last instruction (which must be an exit), each once.
        for (var i = 0; i < _subprograms.Count; i++) _subprograms[i](this);
        _subprograms.Clear();
        if (_pendingLabels.Count > 0)
        {
            throw new AssemblerException(
                $"Label '{_pendingLabels[0]}' is at the end of the program with no instruction after it; a label must mark an instruction.");
        }

        // Aliases resolve in place: an event program is thousands of instructions, and a copy of them was a large
        // object (fresh pages) on every launch.
        for (var i = 0; i < _instructions.Count; i++)
            if (_instructions[i].Reference is { } r && _aliases.TryGetValue(r, out var primary))
                _instructions[i] = _instructions[i].WithReference(primary);
        return Assembler.Assemble(_instructions);
    }

    /// <summary>
    /// A BPF function starting at <paramref name="label"/>, emitted by <paramref name="body"/> after the main program when
    /// it is assembled (once, however often it is asked for). Its code has a stack frame of its own: it must not use
    /// <see cref="Stack"/>'s slots.
    /// </summary>
    public InstructionBuilder Subprogram(string label, Action<InstructionBuilder> body)
    {
        ValidateLabelName(label);
        if (_subprogramLabels.Add(label)) _subprograms.Add(code => body(code.Label(label)));
        return this;
    }

    /// <summary><c>lddw dst, &amp;function</c> (src = <see cref="PseudoSource.Function"/>): a callback's address for a helper such as <c>bpf_loop</c>.</summary>
    public InstructionBuilder LoadFunction(Register dst, string label)
    {
        ValidateLabelName(label);
        return Emit(new Instruction(OpCode.LoadImmediate64, dst, PseudoSource.Function, 0, -1, Reference: label));
    }

    // ---- ALU -------------------------------------------------------------------------------------------------

    /// <summary><c>dst = imm</c> (64-bit; the immediate is sign-extended).</summary>
    public InstructionBuilder Mov64(Register dst, int imm) => Alu64(AluOperation.Move, dst, imm);

    /// <summary><c>dst = src</c> (64-bit).</summary>
    public InstructionBuilder Mov64(Register dst, Register src) => Alu64(AluOperation.Move, dst, src);

    /// <summary><c>wdst = imm</c>; the upper 32 bits of dst become zero.</summary>
    public InstructionBuilder Mov32(Register dst, int imm) => Alu32(AluOperation.Move, dst, imm);

    /// <summary><c>wdst = wsrc</c>; zero-extends, which is the cheap way to truncate a value to 32 bits.</summary>
    public InstructionBuilder Mov32(Register dst, Register src) => Alu32(AluOperation.Move, dst, src);

    /// <summary>64-bit <paramref name="operation"/> with an immediate operand.</summary>
    public InstructionBuilder Alu64(AluOperation operation, Register dst, int imm) =>
        Emit(new Instruction(OpCode.Alu(InstructionClass.Alu64, operation, SourceOperand.Immediate), dst, Register.R0, 0, imm));

    /// <summary>64-bit <paramref name="operation"/> with a register operand.</summary>
    public InstructionBuilder Alu64(AluOperation operation, Register dst, Register src) =>
        Emit(new Instruction(OpCode.Alu(InstructionClass.Alu64, operation, SourceOperand.Register), dst, src, 0, 0));

    /// <summary>32-bit <paramref name="operation"/> with an immediate operand (result zero-extended).</summary>
    public InstructionBuilder Alu32(AluOperation operation, Register dst, int imm) =>
        Emit(new Instruction(OpCode.Alu(InstructionClass.Alu32, operation, SourceOperand.Immediate), dst, Register.R0, 0, imm));

    /// <summary>32-bit <paramref name="operation"/> with a register operand (result zero-extended).</summary>
    public InstructionBuilder Alu32(AluOperation operation, Register dst, Register src) =>
        Emit(new Instruction(OpCode.Alu(InstructionClass.Alu32, operation, SourceOperand.Register), dst, src, 0, 0));

    public InstructionBuilder Add64(Register dst, int imm) => Alu64(AluOperation.Add, dst, imm);
    public InstructionBuilder Add64(Register dst, Register src) => Alu64(AluOperation.Add, dst, src);
    public InstructionBuilder Sub64(Register dst, int imm) => Alu64(AluOperation.Subtract, dst, imm);
    public InstructionBuilder Sub64(Register dst, Register src) => Alu64(AluOperation.Subtract, dst, src);
    public InstructionBuilder Mul64(Register dst, int imm) => Alu64(AluOperation.Multiply, dst, imm);
    public InstructionBuilder Mul64(Register dst, Register src) => Alu64(AluOperation.Multiply, dst, src);
    public InstructionBuilder Div64(Register dst, int imm) => Alu64(AluOperation.Divide, dst, imm);
    public InstructionBuilder Div64(Register dst, Register src) => Alu64(AluOperation.Divide, dst, src);
    public InstructionBuilder Mod64(Register dst, int imm) => Alu64(AluOperation.Modulo, dst, imm);
    public InstructionBuilder Mod64(Register dst, Register src) => Alu64(AluOperation.Modulo, dst, src);
    public InstructionBuilder Or64(Register dst, int imm) => Alu64(AluOperation.Or, dst, imm);
    public InstructionBuilder Or64(Register dst, Register src) => Alu64(AluOperation.Or, dst, src);
    public InstructionBuilder And64(Register dst, int imm) => Alu64(AluOperation.And, dst, imm);
    public InstructionBuilder And64(Register dst, Register src) => Alu64(AluOperation.And, dst, src);
    public InstructionBuilder Xor64(Register dst, int imm) => Alu64(AluOperation.Xor, dst, imm);
    public InstructionBuilder Xor64(Register dst, Register src) => Alu64(AluOperation.Xor, dst, src);
    public InstructionBuilder Lsh64(Register dst, int imm) => Alu64(AluOperation.LeftShift, dst, imm);
    public InstructionBuilder Lsh64(Register dst, Register src) => Alu64(AluOperation.LeftShift, dst, src);
    public InstructionBuilder Rsh64(Register dst, int imm) => Alu64(AluOperation.RightShift, dst, imm);
    public InstructionBuilder Rsh64(Register dst, Register src) => Alu64(AluOperation.RightShift, dst, src);
    public InstructionBuilder Arsh64(Register dst, int imm) => Alu64(AluOperation.ArithmeticRightShift, dst, imm);
    public InstructionBuilder Arsh64(Register dst, Register src) => Alu64(AluOperation.ArithmeticRightShift, dst, src);

    /// <summary><c>dst = -dst</c> (64-bit).</summary>
    public InstructionBuilder Neg64(Register dst) => Alu64(AluOperation.Negate, dst, 0);

    // ---- 64-bit immediates and map pointers ---------------------------------------------------------------------

    /// <summary><c>lddw dst, imm64</c>: the only way to load a full 64-bit constant (two slots).</summary>
    public InstructionBuilder LoadImm64(Register dst, long imm) =>
        Emit(new Instruction(OpCode.LoadImmediate64, dst, Register.R0, 0, imm));

    /// <summary>
    /// <c>lddw dst, map[fd]</c> with src = <see cref="PseudoSource.MapFd"/>: the verifier replaces the fd with the map
    /// pointer, which is how helpers such as <c>bpf_ringbuf_reserve</c> receive their map argument.
    /// </summary>
    public InstructionBuilder LoadMapFd(Register dst, int fd) =>
        Emit(new Instruction(OpCode.LoadImmediate64, dst, PseudoSource.MapFd, 0, (uint)fd));

    /// <summary>
    /// <c>lddw dst, map[name]</c>: like <see cref="LoadMapFd"/> for a map that may not exist yet; the fd is filled in
    /// by <see cref="AssembledProgram.BindMaps"/>. Until then the immediate is −1, which no kernel accepts as an fd.
    /// </summary>
    public InstructionBuilder LoadMap(Register dst, string mapName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(mapName);
        return Emit(new Instruction(OpCode.LoadImmediate64, dst, PseudoSource.MapFd, 0, uint.MaxValue, Map: mapName));
    }

    /// <summary>
    /// <c>dst = &amp;value + valueOffset</c> of the one-value array <paramref name="mapName"/> (BPF_PSEUDO_MAP_VALUE, bound
    /// like <see cref="LoadMap"/>): a pointer into the value with no key and no lookup.
    /// </summary>
    public InstructionBuilder LoadMapValue(Register dst, string mapName, int valueOffset = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(mapName);
        return Emit(new Instruction(OpCode.LoadImmediate64, dst, PseudoSource.MapValue, 0, ((long)valueOffset << 32) | uint.MaxValue, Map: mapName));
    }

    /// <summary>
    /// <c>lddw dst, &amp;map[fd].value + offset</c> with src = <see cref="PseudoSource.MapValue"/> (array maps with one
    /// entry, e.g. global data): fd goes in the first slot's immediate, the byte offset in the second's.
    /// </summary>
    public InstructionBuilder LoadMapValue(Register dst, int fd, int valueOffset = 0) =>
        Emit(new Instruction(OpCode.LoadImmediate64, dst, PseudoSource.MapValue, 0, ((long)valueOffset << 32) | (uint)fd));

    // ---- Memory ------------------------------------------------------------------------------------------------

    /// <summary><c>dst = *(size *)(src + offset)</c> (ldx; zero-extends).</summary>
    public InstructionBuilder LoadMem(MemorySize size, Register dst, Register src, short offset) =>
        Emit(new Instruction(OpCode.Memory(InstructionClass.LoadFromMemory, MemoryMode.Memory, size), dst, src, offset, 0));

    /// <summary><c>*(size *)(dst + offset) = src</c> (stx).</summary>
    public InstructionBuilder StoreMem(MemorySize size, Register dst, short offset, Register src) =>
        Emit(new Instruction(OpCode.Memory(InstructionClass.StoreFromRegister, MemoryMode.Memory, size), dst, src, offset, 0));

    /// <summary><c>*(size *)(dst + offset) = imm</c> (st; for <see cref="MemorySize.DoubleWord"/> the immediate is sign-extended).</summary>
    public InstructionBuilder StoreImm(MemorySize size, Register dst, short offset, int imm) =>
        Emit(new Instruction(OpCode.Memory(InstructionClass.StoreImmediate, MemoryMode.Memory, size), dst, Register.R0, offset, imm));

    /// <summary>
    /// <c>r0 = cmpxchg((u64 *)(dst + offset), r0, src)</c>: stores <paramref name="src"/> when the word equals R0; R0 gets the
    /// word as it was (BPF_ATOMIC | BPF_CMPXCHG, Linux 5.12+).
    /// </summary>
    public InstructionBuilder AtomicCompareExchange64(Register dst, short offset, Register src) =>
        Emit(new Instruction(OpCode.Memory(InstructionClass.StoreFromRegister, MemoryMode.Atomic, MemorySize.DoubleWord), dst, src, offset, CompareExchange));

    private const int CompareExchange = 0xf0 | 0x01; // BPF_CMPXCHG includes BPF_FETCH

    /// <summary>
    /// <c>lock *(u64 *)(dst + offset) += src</c>: counters shared by every CPU-local program instance stay exact
    /// even when a uprobe handler is preempted by another hit on the same CPU.
    /// </summary>
    public InstructionBuilder AtomicAdd64(Register dst, short offset, Register src) =>
        Emit(new Instruction(OpCode.Memory(InstructionClass.StoreFromRegister, MemoryMode.Atomic, MemorySize.DoubleWord), dst, src, offset, (int)AluOperation.Add));

    // ---- Calls and control flow --------------------------------------------------------------------------------

    /// <summary><c>call helper</c>: arguments in R1–R5, result in R0; R1–R5 are clobbered.</summary>
    public InstructionBuilder Call(HelperFunction helper) => CallHelperId((int)helper);

    /// <summary><c>call id</c> for a helper not listed in <see cref="HelperFunction"/>.</summary>
    public InstructionBuilder CallHelperId(int helperId) =>
        Emit(new Instruction(OpCode.Jump(InstructionClass.Jump, JumpOperation.Call, SourceOperand.Immediate), Register.R0, Register.R0, 0, helperId));

    /// <summary>BPF-to-BPF call to the subprogram starting at <paramref name="label"/> (src = <see cref="PseudoSource.BpfFunctionCall"/>).</summary>
    public InstructionBuilder CallFunction(string label)
    {
        ValidateLabelName(label);
        return Emit(new Instruction(OpCode.Jump(InstructionClass.Jump, JumpOperation.Call, SourceOperand.Immediate), Register.R0, PseudoSource.BpfFunctionCall, 0, -1, Reference: label));
    }

    /// <summary><c>exit</c>: returns R0 to the kernel.</summary>
    public InstructionBuilder Exit() =>
        Emit(new Instruction(OpCode.Jump(InstructionClass.Jump, JumpOperation.Exit, SourceOperand.Immediate), Register.R0, Register.R0, 0, 0));

    /// <summary><c>ja label</c>: unconditional jump.</summary>
    public InstructionBuilder Jump(string label) =>
        EmitJump(InstructionClass.Jump, JumpOperation.Always, SourceOperand.Immediate, Register.R0, Register.R0, 0, label);

    /// <summary><c>if dst (condition) imm goto label</c>, comparing all 64 bits (imm sign-extended).</summary>
    public InstructionBuilder JumpIf(JumpCondition condition, Register dst, int imm, string label) =>
        EmitJump(InstructionClass.Jump, (JumpOperation)condition, SourceOperand.Immediate, dst, Register.R0, imm, label);

    /// <summary><c>if dst (condition) src goto label</c>, comparing all 64 bits.</summary>
    public InstructionBuilder JumpIf(JumpCondition condition, Register dst, Register src, string label) =>
        EmitJump(InstructionClass.Jump, (JumpOperation)condition, SourceOperand.Register, dst, src, 0, label);

    /// <summary><c>if wdst (condition) imm goto label</c>, comparing only the low 32 bits.</summary>
    public InstructionBuilder JumpIf32(JumpCondition condition, Register dst, int imm, string label) =>
        EmitJump(InstructionClass.Jump32, (JumpOperation)condition, SourceOperand.Immediate, dst, Register.R0, imm, label);

    /// <summary><c>if wdst (condition) wsrc goto label</c>, comparing only the low 32 bits.</summary>
    public InstructionBuilder JumpIf32(JumpCondition condition, Register dst, Register src, string label) =>
        EmitJump(InstructionClass.Jump32, (JumpOperation)condition, SourceOperand.Register, dst, src, 0, label);

    private InstructionBuilder EmitJump(InstructionClass jumpClass, JumpOperation operation, SourceOperand source, Register dst, Register src, int imm, string label)
    {
        ValidateLabelName(label);

        // Offset -1 is a placeholder (a jump to itself) until Assemble patches it, mirroring cilium/ebpf.
        return Emit(new Instruction(OpCode.Jump(jumpClass, operation, source), dst, src, -1, imm, Reference: label));
    }

    private static void ValidateLabelName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException("Label names must not be empty or whitespace.", nameof(name));
        }
    }
}
