using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Tests.Asm;

public sealed class DisassemblerTests
{
    [Fact]
    public void RoundTripsATypicalRingbufProgramInVerifierNotation()
    {
        var program = new InstructionBuilder()
            .Mov64(Register.R6, Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R6, 128)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, -8, Register.R1)
            .LoadMapFd(Register.R1, 5)
            .Mov64(Register.R2, 16)
            .Mov64(Register.R3, 0)
            .Call(HelperFunction.RingbufReserve)
            .JumpIf(JumpCondition.Equal, Register.R0, 0, "out")
            .Mov64(Register.R7, Register.R0)
            .Mov64(Register.R1, Register.FramePointer)
            .Add64(Register.R1, -8)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.R1, 0)
            .Lsh64(Register.R1, 32)
            .Arsh64(Register.R1, 32)
            .StoreMem(MemorySize.DoubleWord, Register.R7, 0, Register.R1)
            .Mov64(Register.R1, Register.R7)
            .Mov64(Register.R2, 0)
            .Call(HelperFunction.RingbufSubmit)
            .Label("out")
            .Mov64(Register.R0, 0)
            .Exit()
            .Assemble();

        string[] expected =
        [
            "0: (bf) r6 = r1",
            "1: (79) r1 = *(u64 *)(r6 +128)",
            "2: (7b) *(u64 *)(r10 -8) = r1",
            "3: (18) r1 = map[fd:5]",
            "5: (b7) r2 = 16",
            "6: (b7) r3 = 0",
            "7: (85) call bpf_ringbuf_reserve#131",
            "8: (15) if r0 == 0x0 goto pc+10",
            "9: (bf) r7 = r0",
            "10: (bf) r1 = r10",
            "11: (07) r1 += -8",
            "12: (79) r1 = *(u64 *)(r1 +0)",
            "13: (67) r1 <<= 32",
            "14: (c7) r1 s>>= 32",
            "15: (7b) *(u64 *)(r7 +0) = r1",
            "16: (bf) r1 = r7",
            "17: (b7) r2 = 0",
            "18: (85) call bpf_ringbuf_submit#132",
            "19: (b7) r0 = 0",
            "20: (95) exit",
        ];

        Assert.Equal(expected, Disassembler.DisassembleLines(program.Bytecode));
        Assert.Equal(string.Join('\n', expected), program.Disassemble());
    }

    public static TheoryData<string, Action<InstructionBuilder>> SingleInstructions => new()
    {
        { "(b4) w0 = 0", b => b.Mov32(Register.R0, 0) },
        { "(bc) w1 = w2", b => b.Mov32(Register.R1, Register.R2) },
        { "(18) r2 = 0x1122334455667788", b => b.LoadImm64(Register.R2, 0x1122334455667788) },
        { "(18) r2 = 0xffffffffffffffff", b => b.LoadImm64(Register.R2, -1) },
        { "(18) r3 = map[fd:7][0]+16", b => b.LoadMapValue(Register.R3, 7, 16) },
        { "(7a) *(u64 *)(r10 -16) = 0", b => b.StoreImm(MemorySize.DoubleWord, Register.R10, -16, 0) },
        { "(62) *(u32 *)(r10 -4) = -9", b => b.StoreImm(MemorySize.Word, Register.R10, -4, -9) },
        { "(63) *(u32 *)(r10 -4) = r3", b => b.StoreMem(MemorySize.Word, Register.R10, -4, Register.R3) },
        { "(73) *(u8 *)(r1 +3) = r2", b => b.StoreMem(MemorySize.Byte, Register.R1, 3, Register.R2) },
        { "(69) r2 = *(u16 *)(r1 +2)", b => b.LoadMem(MemorySize.HalfWord, Register.R2, Register.R1, 2) },
        { "(87) r1 = -r1", b => b.Neg64(Register.R1) },
        { "(57) r1 &= 255", b => b.And64(Register.R1, 255) },
        { "(4f) r1 |= r2", b => b.Or64(Register.R1, Register.R2) },
        { "(77) r1 >>= 32", b => b.Rsh64(Register.R1, 32) },
        { "(97) r1 %= 3", b => b.Mod64(Register.R1, 3) },
        { "(ac) w1 ^= w2", b => b.Alu32(AluOperation.Xor, Register.R1, Register.R2) },
        { "(85) call bpf_get_current_pid_tgid#14", b => b.Call(HelperFunction.GetCurrentPidTgid) },
        { "(85) call unknown#9999", b => b.CallHelperId(9999) },
        { "(95) exit", b => b.Exit() },
    };

    [Theory]
    [MemberData(nameof(SingleInstructions))]
    public void FormatsSingleInstructions(string expected, Action<InstructionBuilder> emit)
    {
        var builder = new InstructionBuilder();
        emit(builder);

        Assert.Equal(expected, Disassembler.Format(builder.Assemble().Bytecode));
        Assert.Equal(expected, Disassembler.Format(builder.Instructions[0]));
    }

    [Fact]
    public void FormatsJumpsWithSignedOffsetsAndHexImmediates()
    {
        var program = new InstructionBuilder()
            .Label("top")
            .JumpIf32(JumpCondition.Equal, Register.R1, 3, "top")
            .JumpIf(JumpCondition.SignedLessOrEqual, Register.R1, -1, "top")
            .JumpIf(JumpCondition.BitsSet, Register.R1, Register.R2, "end")
            .JumpIf32(JumpCondition.GreaterOrEqual, Register.R1, Register.R2, "end")
            .Jump("top")
            .Label("end")
            .Exit()
            .Assemble();

        Assert.Equal(
            [
                "0: (16) if w1 == 0x3 goto pc-1",
                "1: (d5) if r1 s<= 0xffffffff goto pc-2",
                "2: (4d) if r1 & r2 goto pc+2",
                "3: (3e) if w1 >= w2 goto pc+1",
                "4: (05) goto pc-5",
                "5: (95) exit",
            ],
            Disassembler.DisassembleLines(program.Bytecode));
    }

    [Fact]
    public void FormatsAtomicsAndLocalCalls()
    {
        byte[] bytes =
        [
            0xdb, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // lock *(u64 *)(r1 +0) += r2
            0xc3, 0x21, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, // r2 = atomic_fetch_add((u32 *)(r1 +8), r2)
            0x85, 0x10, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, // call pc-2
        ];

        Assert.Equal(
            [
                "0: (db) lock *(u64 *)(r1 +0) += r2",
                "1: (c3) r2 = atomic_fetch_add((u32 *)(r1 +8), r2)",
                "2: (85) call pc-2",
            ],
            Disassembler.DisassembleLines(bytes));
    }

    [Fact]
    public void UnknownOpcodesTruncatedLddwAndTrailingBytesAreShownNotThrown()
    {
        byte[] bytes =
        [
            0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ALU64 op 0xf0: not an operation
            0x96, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit in the JMP32 class: invalid
            0x18, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // lddw whose second slot is missing
            0xaa, 0xbb, 0xcc,                                // 3 stray bytes
        ];

        Assert.Equal(
            [
                "0: (ff) unknown",
                "1: (96) unknown",
                "2: (18) lddw truncated: second slot missing",
                "3: (3 trailing bytes, not a whole 8-byte instruction)",
            ],
            Disassembler.DisassembleLines(bytes));
    }

    [Fact]
    public void MalformedLddwSecondSlotIsFlagged()
    {
        byte[] bytes = [0x18, 0x01, 0, 0, 0x01, 0, 0, 0, 0x95, 0, 0, 0, 0x02, 0, 0, 0];

        Assert.Equal("0: (18) r1 = 0x200000001 (malformed second slot)", Assert.Single(Disassembler.DisassembleLines(bytes)));
    }

    [Fact]
    public void NeverThrowsOnGarbage()
    {
        // Every opcode with every register nibble combination and assorted offsets/immediates...
        Span<byte> slot = stackalloc byte[16];
        for (var code = 0; code <= 0xff; code++)
        {
            foreach (var regs in new byte[] { 0x00, 0x1a, 0xff, 0x21 })
            {
                foreach (var imm in new[] { 0, 1, 0x41, 0xe1, 0xf1, -1, int.MinValue })
                {
                    slot.Clear();
                    slot[0] = (byte)code;
                    slot[1] = regs;
                    slot[2] = 0x08;
                    BitConverter.TryWriteBytes(slot[4..], imm);
                    var lines = Disassembler.DisassembleLines(slot);
                    Assert.NotEmpty(lines);
                    Assert.All(lines, line => Assert.False(string.IsNullOrWhiteSpace(line)));
                }
            }
        }

        // ...and random byte strings of every length, including ones that end in the middle of a slot.
        var random = new Random(1234);
        for (var length = 0; length < 200; length++)
        {
            var bytes = new byte[length];
            random.NextBytes(bytes);
            Assert.NotNull(Disassembler.Disassemble(bytes));
        }
    }

    [Fact]
    public void FormatOfAnUnencodableInstructionDoesNotThrow()
    {
        var tooWide = new Instruction(OpCode.Alu(InstructionClass.Alu64, AluOperation.Move, SourceOperand.Immediate), Register.R0, Register.R0, 0, long.MaxValue);

        Assert.StartsWith("(b7) unencodable", Disassembler.Format(tooWide), StringComparison.Ordinal);
    }
}
