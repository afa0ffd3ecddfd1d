using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Emit;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Tests.Sys;

namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// The program fragments in a real program, run by the kernel on CPU-clock samples of a spinning thread: its maps
/// named in the code and bound after they exist, the pid/tid filter, the string copy and the ring output.
/// </summary>
public class EmitterTests
{
    // record value: u64 lost, u16 length[2], u32 truncated bits, then the string bytes.
    private const int LostOffset = 0, LengthsOffset = 8, TruncatedOffset = 12, DataOffset = 16, ValueSize = 64;
    private const int Keep = 8;

    [Fact]
    public void FilteredSamplesCopyStringsWholeOrCutAndCountWhatTheRingCannotTake()
    {
        KernelRequirement.EnsureRoot();
        using var busy = new BusyThread();
        var exact = Encoding.ASCII.GetBytes("12345678\0");            // exactly Keep bytes: whole
        var longer = Encoding.ASCII.GetBytes("0123456789abcdef\0");   // cut to Keep bytes and marked
        var exactAddress = Marshal.AllocHGlobal(exact.Length);
        var longerAddress = Marshal.AllocHGlobal(longer.Length);
        try
        {
            Marshal.Copy(exact, 0, exactAddress, exact.Length);
            Marshal.Copy(longer, 0, longerAddress, longer.Length);
            var program = Generate(busy.Tid, exactAddress, longerAddress);
            Assert.Equal(["targets", "record", "ring"], program.MapNames);

            using var targets = BpfMap.Create(MapSpec.Hash("t_targets", 4, 1, 4));
            using var record = BpfMap.Create(MapSpec.Array("t_record", ValueSize, 1));
            using var ring = BpfMap.Create(MapSpec.RingBuffer("t_ring", 4096)); // ~170 records: most samples find it full
            targets.Update(BitConverter.GetBytes(Environment.ProcessId), [1]);
            var bound = program.BindMaps(new Dictionary<string, int> { ["targets"] = targets.Fd.Value, ["record"] = record.Fd.Value, ["ring"] = ring.Fd.Value });
            using var loaded = BpfProgram.Load(ProgramSpec.Of("t_emit", ProgramType.PerfEvent, bound));
            var value = new byte[ValueSize];
            // Until the ring has refused a record: a busy machine gives the thread fewer samples per second.
            using (CpuClockSampling.Attach(loaded, 999))
            {
                var deadline = DateTime.UtcNow.AddSeconds(20);
                do Thread.Sleep(50);
                while (DateTime.UtcNow < deadline && (!record.TryLookup(BitConverter.GetBytes(0), value) || BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(LostOffset)) == 0));
            }

            Assert.True(record.TryLookup(BitConverter.GetBytes(0), value));
            Assert.Equal(8, BinaryPrimitives.ReadUInt16LittleEndian(value.AsSpan(LengthsOffset)));
            Assert.Equal(8, BinaryPrimitives.ReadUInt16LittleEndian(value.AsSpan(LengthsOffset + 2)));
            Assert.Equal(0b10u, BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(TruncatedOffset)));
            Assert.Equal("1234567801234567", Encoding.ASCII.GetString(value, DataOffset, 16));
            Assert.InRange(BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(LostOffset)), 1UL, 1000UL);
        }
        finally
        {
            Marshal.FreeHGlobal(exactAddress);
            Marshal.FreeHGlobal(longerAddress);
        }
    }

    [Fact]
    public void SamplesOfOtherProcessesAreFilteredOut()
    {
        KernelRequirement.EnsureRoot();
        using var busy = new BusyThread();
        var program = Generate(busy.Tid, 0, 0);
        using var targets = BpfMap.Create(MapSpec.Hash("t_targets", 4, 1, 4));
        using var record = BpfMap.Create(MapSpec.Array("t_record", ValueSize, 1));
        using var ring = BpfMap.Create(MapSpec.RingBuffer("t_ring", 4096));
        targets.Update(BitConverter.GetBytes(1), [1]); // init, not us
        var bound = program.BindMaps(new Dictionary<string, int> { ["targets"] = targets.Fd.Value, ["record"] = record.Fd.Value, ["ring"] = ring.Fd.Value });
        using var loaded = BpfProgram.Load(ProgramSpec.Of("t_emit", ProgramType.PerfEvent, bound));
        using (CpuClockSampling.Attach(loaded, 999))
            Thread.Sleep(300);
        var value = new byte[ValueSize];
        Assert.True(record.TryLookup(BitConverter.GetBytes(0), value));
        Assert.All(value, b => Assert.Equal(0, b));
    }

    private static AssembledProgram Generate(int tid, nint first, nint second)
    {
        var record = Register.R8;
        var cursor = Register.R9;
        var code = new InstructionBuilder();
        code.Call(HelperFunction.GetCurrentPidTgid).Mov64(Register.R7, Register.R0);
        PidFilter.Emit(code, Register.R7, "targets", [tid], "out");
        MapLookup.Emit(code, "record", MapLookup.ZeroKey(code), "out").Mov64(record, Register.R0);
        code.Mov64(cursor, 0).LoadImm64(Register.R3, first);
        UserStringCopy.Emit(code, record, DataOffset, cursor, Keep, Keep + 2, new StringFields(LengthsOffset, MemorySize.HalfWord, TruncatedOffset, 0));
        code.LoadImm64(Register.R3, second);
        UserStringCopy.Emit(code, record, DataOffset, cursor, Keep, Keep + 2, new StringFields(LengthsOffset + 2, MemorySize.HalfWord, TruncatedOffset, 1));
        RingOutput.Emit(code, "ring", record, DataOffset, cursor, 0, record, LostOffset);
        return code.Label("out").Mov64(Register.R0, 0).Exit().Assemble();
    }
}
