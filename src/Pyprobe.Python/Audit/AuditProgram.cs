using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Audit;

/// <summary>Link-time addresses (vaddr in the probe-carrying file) of the objects the decoder compares types with.</summary>
public sealed record AuditTypeSymbols(ulong None, ulong Str, ulong Int, ulong Bytes, ulong Tuple, ulong List, ulong Float, ulong Bool)
{
    public static readonly string[] Names = ["_Py_NoneStruct", "PyUnicode_Type", "PyLong_Type", "PyBytes_Type", "PyTuple_Type", "PyList_Type", "PyFloat_Type", "PyBool_Type"];

    /// <summary>Reads the symbols from .dynsym/.symtab; null with the missing name when one is not there.</summary>
    public static AuditTypeSymbols? Find(UsdtBinary binary, out string? missing)
    {
        var values = new ulong[Names.Length];
        for (var i = 0; i < Names.Length; i++)
        {
            var symbol = binary.Elf.TryFindUniqueSymbol(Names[i]);
            if (symbol is null)
            {
                missing = Names[i];
                return null;
            }
            values[i] = symbol.Value;
        }
        missing = null;
        return new AuditTypeSymbols(values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7]);
    }
}

/// <summary>The maps the audit program uses (see <see cref="UsdtEventMaps"/> for the meaning).</summary>
public sealed record AuditMaps(int RingFd, int ScratchFd, int? TargetsFd, IReadOnlyList<int>? Tids, int WakeupThreshold);

/// <summary>
/// Generates the program for one audit probe site. The args tuple is borrowed and lives only while the
/// probe runs, so its items are decoded here, in the kernel: the tuple's size and first
/// <see cref="AuditLayout.TopSlots"/> items, each identified by comparing ob_type with the runtime address
/// of PyUnicode_Type, PyLong_Type, ... (link-time address + load bias, the bias being ctx->ip minus the
/// site's link-time address) and copied by kind: compact str bytes, small ints from their digits, bytes,
/// floats, bools, None, and one level of tuple/list items; other objects give their type's name. Every
/// read of target memory is a bounded bpf_probe_read_user, so a bad pointer costs a field, never the target.
/// </summary>
public static class AuditProgram
{
    public const int HitsCounterOffset = EventProgramParts.HitsCounterOffset;
    public const int LostCounterOffset = EventProgramParts.LostCounterOffset;
    private const int RecordOffset = EventProgramParts.RecordOffset;

    public static int ScratchValueSize => (RecordOffset + AuditLayout.RecordSize + 7) / 8 * 8;

    /// <summary>Per nesting level: the object, its type, a 24-byte read buffer, and (level 0) the items base and count.</summary>
    private sealed record Frame(short Object, short Type, short Buffer, short Items, short Count)
    {
        public static Frame Allocate(StackSlots stack, bool withItems) => new(
            stack.Allocate(8, "object"), stack.Allocate(8, "type"), stack.Allocate(24, "read buffer"),
            withItems ? stack.Allocate(8, "items") : (short)0, withItems ? stack.Allocate(8, "count") : (short)0);
    }

    /// <summary>Generates the program for one site and binds it to the session's maps.</summary>
    public static AssembledProgram Generate(IReadOnlyList<UsdtArgument> arguments, ulong siteAddress, AuditMaps maps, PyObjectLayout? layout, AuditTypeSymbols? symbols, Func<string, ulong>? resolveSymbol = null) =>
        Build(arguments, siteAddress, new UsdtEventOptions(maps.TargetsFd is not null, maps.Tids, maps.WakeupThreshold), layout, symbols, resolveSymbol)
            .BindMaps(EventProgramParts.Bindings(maps.RingFd, maps.ScratchFd, maps.TargetsFd));

    /// <summary>Generates the program with the maps of <see cref="EventProgramParts"/> by name, to bind later.</summary>
    public static AssembledProgram Build(IReadOnlyList<UsdtArgument> arguments, ulong siteAddress, UsdtEventOptions options, PyObjectLayout? layout, AuditTypeSymbols? symbols, Func<string, ulong>? resolveSymbol = null)
    {
        if (arguments.Count < 2) throw new UsdtException($"the audit probe has {arguments.Count} arguments, expected 2 (event, args)");
        var ctx = Register.R6;
        var scratch = Register.R8;
        var code = new InstructionBuilder();
        const string exit = "out", send = "send";

        EventProgramParts.EmitStart(code, ctx, Register.R7, scratch, options.FilterTargets, options.Tids, exit);
        EventProgramParts.EmitHeader(code, ctx, Register.R7, scratch);
        code.StoreImm(MemorySize.Word, scratch, F(AuditLayout.FlagsOffset), 0)
            .StoreImm(MemorySize.Word, scratch, F(AuditLayout.FlagsOffset + 4), 0)
            .StoreImm(MemorySize.DoubleWord, scratch, F(AuditLayout.TupleSizeOffset), -1);
        for (var slot = 0; slot < AuditLayout.SlotCount; slot++)
            code.StoreImm(MemorySize.DoubleWord, scratch, Slot(slot, 0), 0);

        // The event name.
        var argumentScratch = code.Stack.Allocate(8, "argument");
        UsdtArgumentEmitter.EmitLoad(code, arguments[0], ctx, argumentScratch, siteAddress, resolveSymbol);
        code.Mov64(Register.R3, Register.R0);
        UserStringCopy.Emit(code, scratch, F(AuditLayout.EventOffset), cursor: null,
            keep: AuditLayout.EventCapacity - 1, readSize: AuditLayout.EventCapacity,
            new StringFields(F(AuditLayout.EventLengthOffset), MemorySize.Word, F(AuditLayout.FlagsOffset), 0, TruncatedWordIsFresh: true));

        if (layout is not null && symbols is not null)
        {
            var biasSlot = code.Stack.Allocate(8, "load bias");
            var argsSlot = code.Stack.Allocate(8, "args tuple");
            var top = Frame.Allocate(code.Stack, withItems: true);
            var nested = Frame.Allocate(code.Stack, withItems: false);
            // Load bias: at the probe, ip is the site's runtime address.
            PtRegs.LoadIp(code, Register.R1, ctx)
                .LoadImm64(Register.R2, unchecked((long)siteAddress))
                .Sub64(Register.R1, Register.R2)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, biasSlot, Register.R1);
            UsdtArgumentEmitter.EmitLoad(code, arguments[1], ctx, argumentScratch, siteAddress, resolveSymbol);
            code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, argsSlot, Register.R0)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, send)
                .Mov64(Register.R3, Register.R0).Add64(Register.R3, PyObjectLayout.VarSize);
            ReadUser(code, top.Buffer, 8, send);
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, top.Buffer)
                .StoreMem(MemorySize.DoubleWord, scratch, F(AuditLayout.TupleSizeOffset), Register.R1);
            var decoder = new Decoder(code, scratch, layout, symbols, biasSlot, nested);
            for (var i = 0; i < AuditLayout.TopSlots; i++)
            {
                var item = code.Scope($"top{i}");
                code.LoadMem(MemorySize.DoubleWord, Register.R1, scratch, F(AuditLayout.TupleSizeOffset))
                    .JumpIf(JumpCondition.SignedLessOrEqual, Register.R1, i, send)
                    .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, argsSlot)
                    .Add64(Register.R3, layout.TupleItems + 8 * i);
                decoder.DecodeItem(item, top, i, nested: true);
            }
        }

        code.Label(send);
        EventProgramParts.EmitSend(code, scratch, size: null, AuditLayout.RecordSize, options.WakeupThreshold);
        code.Label(exit)
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>bpf_probe_read_user(fp + <paramref name="stackOffset"/>, size, R3); jumps to <paramref name="failed"/> on error.</summary>
    private static void ReadUser(InstructionBuilder code, short stackOffset, int size, string failed)
    {
        code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, stackOffset)
            .Mov64(Register.R2, size)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, failed);
    }

    private static short F(int recordOffset) => (short)(RecordOffset + recordOffset);
    private static short Slot(int slot, int field) => (short)(RecordOffset + AuditLayout.SlotOffset(slot) + field);

    /// <summary>Emits the decoding of the object whose address is in a frame's Object stack slot into one record slot.</summary>
    private sealed class Decoder(InstructionBuilder code, Register scratch, PyObjectLayout layout, AuditTypeSymbols symbols, short biasSlot, Frame nestedFrame)
    {
        /// <summary>Reads the item pointer at R3 into the frame's Object slot and decodes it, or marks the slot unreadable.</summary>
        public void DecodeItem(LabelScope item, Frame frame, int slot, bool nested)
        {
            ReadUser(code, frame.Object, 8, item["unreadable"]);
            Decode(item.ToString(), frame, slot, nested);
            code.Jump(item["next"])
                .Label(item["unreadable"])
                .StoreImm(MemorySize.Byte, scratch, Slot(slot, AuditLayout.SlotKindOffset), (int)AuditValueKind.Unreadable)
                .Label(item["next"])
                .Mov64(Register.R0, 0);
        }

        public void Decode(string p, Frame frame, int slot, bool nested)
        {
            var done = $"{p}_done";
            var cap = AuditLayout.Capacity(slot);
            void Kind(AuditValueKind kind) => code.StoreImm(MemorySize.Byte, scratch, Slot(slot, AuditLayout.SlotKindOffset), (int)kind);
            void Obj(Register r) => code.LoadMem(MemorySize.DoubleWord, r, Register.FramePointer, frame.Object);
            void Runtime(Register r, ulong vaddr) => code.LoadImm64(r, unchecked((long)vaddr))
                .LoadMem(MemorySize.DoubleWord, Register.R5, Register.FramePointer, biasSlot)
                .Add64(r, Register.R5);
            void Value(Register r) => code.StoreMem(MemorySize.DoubleWord, scratch, Slot(slot, AuditLayout.SlotValueOffset), r);
            void ReadField(int offset, int size, string failed)
            {
                Obj(Register.R3);
                code.Add64(Register.R3, offset);
                ReadUser(code, frame.Buffer, size, failed);
            }

            // Label, read one field of the object, keep it as the value (left in R1) and set the kind.
            void Scalar(string label, int offset, MemorySize size, AuditValueKind kind, int readBytes = 0)
            {
                code.Label(label);
                ReadField(offset, readBytes > 0 ? readBytes : size == MemorySize.Word ? 4 : 8, $"{p}_bad");
                code.LoadMem(size, Register.R1, Register.FramePointer, frame.Buffer);
                Value(Register.R1);
                Kind(kind);
            }

            // None is one object; everything else is told apart by its type.
            Obj(Register.R1);
            Runtime(Register.R2, symbols.None);
            code.JumpIf(JumpCondition.NotEqual, Register.R1, Register.R2, $"{p}_notnone");
            Kind(AuditValueKind.None);
            code.Jump(done).Label($"{p}_notnone");
            ReadField(PyObjectLayout.ObType, 8, $"{p}_bad");
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, frame.Buffer)
                .StoreMem(MemorySize.DoubleWord, Register.FramePointer, frame.Type, Register.R1);
            void Dispatch(ulong type, string label)
            {
                code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, frame.Type);
                Runtime(Register.R2, type);
                code.JumpIf(JumpCondition.Equal, Register.R1, Register.R2, label);
            }
            Dispatch(symbols.Str, $"{p}_str");
            Dispatch(symbols.Int, $"{p}_int");
            Dispatch(symbols.Bytes, $"{p}_bytes");
            Dispatch(symbols.Bool, $"{p}_bool");
            Dispatch(symbols.Float, $"{p}_float");
            if (nested)
            {
                Dispatch(symbols.Tuple, $"{p}_tuple");
                Dispatch(symbols.List, $"{p}_list");
            }

            // Other: the type's name.
            Kind(AuditValueKind.Other);
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, frame.Type)
                .Add64(Register.R3, PyObjectLayout.TypeName);
            ReadUser(code, frame.Buffer, 8, done);
            code.LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, frame.Buffer)
                .Mov64(Register.R1, scratch).Add64(Register.R1, Slot(slot, AuditLayout.SlotDataOffset))
                .Mov64(Register.R2, cap)
                .Call(HelperFunction.ProbeReadUserStr)
                .JumpIf(JumpCondition.SignedLess, Register.R0, 1, done)
                .Sub64(Register.R0, 1)
                .StoreMem(MemorySize.HalfWord, scratch, Slot(slot, AuditLayout.SlotLengthOffset), Register.R0)
                .Jump(done);

            // str: length, state; compact ASCII bytes follow the PyASCIIObject, other compact strings the
            // PyCompactUnicodeObject, in code units of kind bytes (1, 2 or 4).
            code.Label($"{p}_str");
            ReadField(PyObjectLayout.VarSize, 24, $"{p}_bad");
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, frame.Buffer);
            Value(Register.R1);
            code.LoadMem(MemorySize.Word, Register.R2, Register.FramePointer, (short)(frame.Buffer + 16));
            Kind(AuditValueKind.StrUndecodable);
            code.Mov64(Register.R3, Register.R2).And64(Register.R3, 0x20)
                .JumpIf(JumpCondition.Equal, Register.R3, 0, done);
            Kind(AuditValueKind.Str);
            code.Mov64(Register.R3, Register.R2).And64(Register.R3, 0x40)
                .JumpIf(JumpCondition.Equal, Register.R3, 0, $"{p}_wide")
                .StoreImm(MemorySize.Byte, scratch, Slot(slot, AuditLayout.SlotFlagsOffset), 1 << 1)
                .Mov64(Register.R4, layout.AsciiData)
                .Jump($"{p}_copy")
                .Label($"{p}_wide")
                .Rsh64(Register.R2, 2).And64(Register.R2, 7)
                .Mov64(Register.R3, Register.R2).Lsh64(Register.R3, 1)
                .StoreMem(MemorySize.Byte, scratch, Slot(slot, AuditLayout.SlotFlagsOffset), Register.R3)
                .Mul64(Register.R1, Register.R2)
                .Mov64(Register.R4, layout.CompactData)
                .Label($"{p}_copy");
            Copy(p, frame, slot, cap, Register.R1, Register.R4);
            code.Jump(done);

            // int: up to two 30-bit digits exactly; longer ones give their signed digit count.
            code.Label($"{p}_int");
            ReadField(PyObjectLayout.VarSize, 16, $"{p}_bad");
            code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, frame.Buffer);
            // R2 = digit count, R4 = 1 when negative
            if (layout.LongTag)
            {
                code.Mov64(Register.R2, Register.R1).Rsh64(Register.R2, 3)
                    .Mov64(Register.R4, Register.R1).And64(Register.R4, 3)
                    .Rsh64(Register.R4, 1);
            }
            else
            {
                code.Mov64(Register.R2, Register.R1)
                    .Mov64(Register.R4, 0)
                    .JumpIf(JumpCondition.SignedGreaterOrEqual, Register.R1, 0, $"{p}_pos")
                    .Neg64(Register.R2)
                    .Mov64(Register.R4, 1)
                    .Label($"{p}_pos")
                    .Mov64(Register.R0, 0);
            }
            code.JumpIf(JumpCondition.Greater, Register.R2, 2, $"{p}_big")
                .Mov64(Register.R0, 0)
                .JumpIf(JumpCondition.Equal, Register.R2, 0, $"{p}_sign")
                .LoadMem(MemorySize.Word, Register.R0, Register.FramePointer, (short)(frame.Buffer + 8))
                .JumpIf(JumpCondition.Equal, Register.R2, 1, $"{p}_sign")
                .LoadMem(MemorySize.Word, Register.R3, Register.FramePointer, (short)(frame.Buffer + 12))
                .Lsh64(Register.R3, 30)
                .Or64(Register.R0, Register.R3)
                .Label($"{p}_sign")
                .JumpIf(JumpCondition.Equal, Register.R4, 0, $"{p}_intval")
                .Neg64(Register.R0)
                .Label($"{p}_intval");
            Value(Register.R0);
            Kind(AuditValueKind.Int);
            code.Jump(done)
                .Label($"{p}_big")
                .JumpIf(JumpCondition.Equal, Register.R4, 0, $"{p}_bigval")
                .Neg64(Register.R2)
                .Label($"{p}_bigval");
            Value(Register.R2);
            Kind(AuditValueKind.BigInt);
            code.Jump(done);

            // bytes: ob_size, then ob_sval.
            Scalar($"{p}_bytes", PyObjectLayout.VarSize, MemorySize.DoubleWord, AuditValueKind.Bytes);
            code.Mov64(Register.R4, PyObjectLayout.BytesData);
            Copy(p + "b", frame, slot, cap, Register.R1, Register.R4);
            code.Jump(done);

            // bool: True has digit 1, False none (digit 0 reads as 0 on every version).
            Scalar($"{p}_bool", PyObjectLayout.LongDigits, MemorySize.Word, AuditValueKind.Bool);
            code.Jump(done);

            Scalar($"{p}_float", PyObjectLayout.FloatValue, MemorySize.DoubleWord, AuditValueKind.Float);
            code.Jump(done);

            if (nested)
            {
                // tuple: items inline; list: ob_item points to them. Then the first items, one level deep.
                Scalar($"{p}_tuple", PyObjectLayout.VarSize, MemorySize.DoubleWord, AuditValueKind.Tuple);
                code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, frame.Count, Register.R1);
                Obj(Register.R1);
                code.Add64(Register.R1, layout.TupleItems)
                    .StoreMem(MemorySize.DoubleWord, Register.FramePointer, frame.Items, Register.R1)
                    .Jump($"{p}_items");

                Scalar($"{p}_list", PyObjectLayout.VarSize, MemorySize.DoubleWord, AuditValueKind.List, readBytes: 16);
                code.StoreMem(MemorySize.DoubleWord, Register.FramePointer, frame.Count, Register.R1);
                code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, (short)(frame.Buffer + 8))
                    .StoreMem(MemorySize.DoubleWord, Register.FramePointer, frame.Items, Register.R1);

                code.Label($"{p}_items");
                for (var j = 0; j < AuditLayout.NestedPerSlot; j++)
                {
                    code.LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, frame.Count)
                        .JumpIf(JumpCondition.SignedLessOrEqual, Register.R1, j, done)
                        .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, frame.Items)
                        .Add64(Register.R3, 8 * j);
                    DecodeItem(code.Scope($"{p}_{j}"), nestedFrame, AuditLayout.NestedSlot(slot, j), nested: false);
                }
                code.Jump(done);
            }

            code.Label($"{p}_bad");
            Kind(AuditValueKind.Unreadable);
            code.Label(done)
                .Mov64(Register.R0, 0);
        }

        /// <summary>Copies min(<paramref name="length"/>, cap) bytes from object + <paramref name="offset"/> into the slot's data.</summary>
        private void Copy(string p, Frame frame, int slot, int cap, Register length, Register offset)
        {
            code.Mov64(Register.R2, length)
                .JumpIf(JumpCondition.SignedLess, Register.R2, 0, $"{p}_none")
                .JumpIf(JumpCondition.Greater, Register.R2, cap, $"{p}_cut")
                .Jump($"{p}_read")
                .Label($"{p}_cut")
                .LoadMem(MemorySize.Byte, Register.R1, scratch, Slot(slot, AuditLayout.SlotFlagsOffset))
                .Or64(Register.R1, 1)
                .StoreMem(MemorySize.Byte, scratch, Slot(slot, AuditLayout.SlotFlagsOffset), Register.R1)
                .Mov64(Register.R2, cap)
                .Jump($"{p}_read")
                .Label($"{p}_none")
                .Mov64(Register.R2, 0)
                .Label($"{p}_read")
                .StoreMem(MemorySize.HalfWord, scratch, Slot(slot, AuditLayout.SlotLengthOffset), Register.R2)
                .LoadMem(MemorySize.DoubleWord, Register.R3, Register.FramePointer, frame.Object)
                .Add64(Register.R3, offset)
                .Mov64(Register.R1, scratch).Add64(Register.R1, Slot(slot, AuditLayout.SlotDataOffset))
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.Equal, Register.R0, 0, $"{p}_copied")
                .StoreImm(MemorySize.HalfWord, scratch, Slot(slot, AuditLayout.SlotLengthOffset), 0)
                .Label($"{p}_copied")
                .Mov64(Register.R0, 0);
        }
    }
}
