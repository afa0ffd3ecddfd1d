using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Kernel;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// The fingerprint the programs give a str's bytes (user space trusts it as the name's key): the bpf_loop form (its
/// round checked once by the verifier) and the unrolled loop (kernels before 5.17) give the same value for every length
/// and position, equal to the hash written out here, and both give none where a word would read past the buffer.
/// Each program runs in the kernel through BPF_PROG_TEST_RUN over a buffer in an array map.
/// </summary>
public class BytesFingerprintTests
{
    private const int Limit = 640;

    [Fact]
    public void LoopAndUnrolledFormsGiveTheSameFingerprints()
    {
        if (Environment.UserName != "root") Assert.Fail("this test loads BPF programs into the kernel and must run as root");
        var buffer = new byte[Limit];
        new Random(7).NextBytes(buffer);
        using var data = BpfMap.Create(MapSpec.Array("t_fpdata", Limit, 1));
        data.Update(new byte[4], buffer);
        using var input = BpfMap.Create(MapSpec.Array("t_fpin", 16, 1));
        using var output = BpfMap.Create(MapSpec.Array("t_fpout", 8, 1));
        using var loop = Program(data, input, output, BytesFingerprint.EmitWithLoopHelper);
        using var unrolled = Program(data, input, output, BytesFingerprint.EmitUnrolled);

        var cases = Enumerable.Range(0, 70).Select(n => (Start: 0, Length: n))
            .Concat(Enumerable.Range(0, 70).Select(n => (Start: 5, Length: n)))
            .Concat([(0, 512), (100, 500), (Limit - 17, 17), (Limit - 16, 16), (Limit - 13, 11), (Limit - 10, 10), (0, 513)]);
        foreach (var (start, length) in cases)
        {
            var expected = start + length <= Limit && length <= BytesFingerprint.MaxHashedLength && (length == 0 || start + (length - 1) / 8 * 8 + 8 <= Limit)
                ? Reference(buffer.AsSpan(start), length) : 0;
            Assert.Equal((start, length, expected), (start, length, Run(unrolled, input, output, start, length)));
            Assert.Equal((start, length, expected), (start, length, Run(loop, input, output, start, length)));
        }
    }

    /// <summary>The hash the programs compute, in C#: 8 bytes at a time (the last word's bytes past the end shifted out), seeded with the length.</summary>
    private static ulong Reference(ReadOnlySpan<byte> bytes, int length)
    {
        var hash = 0xCBF29CE484222325UL ^ (ulong)length;
        Span<byte> word = stackalloc byte[8];
        for (var i = 0; i < length; i += 8)
        {
            bytes.Slice(i, 8).CopyTo(word);
            var w = BinaryPrimitives.ReadUInt64LittleEndian(word);
            if (i + 8 > length) w <<= (i + 8 - length) * 8;
            hash ^= w;
            hash *= 0x9E3779B97F4A7C15UL;
            hash ^= hash >> 29;
        }
        return hash | 1UL << 63;
    }

    private static BpfProgram Program(BpfMap data, BpfMap input, BpfMap output, Action<InstructionBuilder, Register, int, Register, Register, int, string> emit)
    {
        var code = new InstructionBuilder();
        code.LoadMapValue(Register.R8, data.Fd.Value, 0)
            .LoadMapValue(Register.R6, input.Fd.Value, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.R6, 0)
            .LoadMem(MemorySize.DoubleWord, Register.R3, Register.R6, 8);
        emit(code, Register.R8, 0, Register.R2, Register.R3, Limit, "none");
        code.Jump("store")
            .Label("none")
            .Mov64(Register.R1, 0)
            .Label("store")
            .LoadMapValue(Register.R2, output.Fd.Value, 0)
            .StoreMem(MemorySize.DoubleWord, Register.R2, 0, Register.R1)
            .Mov64(Register.R0, 2)
            .Exit();
        return BpfProgram.Load(new ProgramSpec("t_fp", XdpTestRun.Type, code.Assemble().Bytecode));
    }

    private static ulong Run(BpfProgram program, BpfMap input, BpfMap output, int start, int length)
    {
        var parameters = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(parameters, start);
        BinaryPrimitives.WriteInt64LittleEndian(parameters.AsSpan(8), length);
        input.Update(new byte[4], parameters);
        XdpTestRun.Run(program.Fd.Value);
        var result = new byte[8];
        Assert.True(output.TryLookup(new byte[4], result));
        return BinaryPrimitives.ReadUInt64LittleEndian(result);
    }
}
