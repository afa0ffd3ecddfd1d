using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// The reader maps a window of the ring's data and moves it along (RingBufferReader.WindowBytes): records that
/// straddle a window's end and records that wrap around the ring's end must still arrive whole and in order.
/// The kernel writes them: an XDP program run through BPF_PROG_TEST_RUN sends one record per run.
/// </summary>
public unsafe class RingWindowTests
{

    /// <param name="ringBytes">Twice the window (the window moves), or a ring smaller than one window (it is mapped whole and
    /// wrapping records need the second mapping of the data).</param>
    /// <param name="perBatch">Records written before each drain: fewer than the ring holds, enough to go round it several times.</param>
    [Theory]
    [InlineData(2 * RingBufferReader.WindowBytes, 600)]
    [InlineData(16384u, 4)]
    public void RecordsAcrossWindowsAndTheRingsEndArriveWholeAndInOrder(uint ringBytes, int perBatch)
    {
        KernelRequirement.EnsureRoot();
        const int recordBytes = 3000; // not a divisor of the window or the ring: records straddle both ends
        using var ring = BpfMap.Create(MapSpec.RingBuffer("t_winring", ringBytes));
        using var template = BpfMap.Create(MapSpec.Array("t_wintpl", recordBytes, 1));
        var pattern = new byte[recordBytes];
        for (var i = 8; i < recordBytes; i++) pattern[i] = (byte)(i * 7);
        template.Update(new byte[4], pattern);
        using var counter = BpfMap.Create(MapSpec.Array("t_wincnt", 8, 1));

        // Each record: a sequence number from an atomic counter (8 bytes), then the pattern.
        var code = new InstructionBuilder()
            .LoadMapValue(Register.R6, template.Fd.Value, 0)
            .LoadMapValue(Register.R1, counter.Fd.Value, 0)
            .Mov64(Register.R2, 1)
            .AtomicAdd64(Register.R1, 0, Register.R2)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.R1, 0)
            .StoreMem(MemorySize.DoubleWord, Register.R6, 0, Register.R2)
            .LoadMapFd(Register.R1, ring.Fd.Value)
            .Mov64(Register.R2, Register.R6)
            .Mov64(Register.R3, recordBytes)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.RingbufOutput)
            .Mov64(Register.R0, 2)
            .Exit()
            .Assemble();
        using var program = BpfProgram.Load(new ProgramSpec("t_winfill", XdpTestRun.Type, code.Bytecode));
        using var reader = new RingBufferReader(ring);

        const int batches = 10;
        ulong expected = 1;
        var bad = 0;
        for (var b = 0; b < batches; b++)
        {
            XdpTestRun.Run(program.Fd.Value, (uint)perBatch);
            var delivered = reader.Drain(record =>
            {
                if (record.Length != recordBytes || BinaryPrimitives.ReadUInt64LittleEndian(record) != expected
                    || !record[8..].SequenceEqual(pattern.AsSpan(8))) bad++;
                expected++;
            });
            Assert.Equal(perBatch, delivered);
        }
        Assert.Equal(0, bad);
        Assert.Equal((ulong)(batches * perBatch + 1), expected);
    }
}
