using System.Buffers.Binary;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Programs;

namespace Pyprobe.Bpf.Tests.Asm;

public class ProgramPartsTests
{
    [Fact]
    public void MapsNamedInInstructionsAreBoundToFdsAfterAssembly()
    {
        var program = new InstructionBuilder()
            .LoadMap(Register.R1, "ring")
            .LoadMap(Register.R2, "scratch")
            .LoadMap(Register.R3, "ring")
            .Mov64(Register.R0, 0).Exit()
            .Assemble();
        Assert.Equal(["ring", "scratch"], program.MapNames);
        Assert.Equal([0, 2, 4], program.MapReferences.Select(r => r.Slot));

        var bound = program.BindMaps(new Dictionary<string, int> { ["ring"] = 7, ["scratch"] = 9 });
        Assert.Empty(bound.MapReferences);
        Assert.Equal([7, 9, 7], new[] { 0, 2, 4 }.Select(slot => BinaryPrimitives.ReadInt32LittleEndian(bound.Bytecode.AsSpan(slot * 8 + 4))));
        Assert.Equal(0x11, bound.Bytecode[1]); // src = BPF_PSEUDO_MAP_FD, dst = r1
        // The unbound program is left as it was (one program can be bound to several sets of maps).
        Assert.Equal(-1, BinaryPrimitives.ReadInt32LittleEndian(program.Bytecode.AsSpan(4)));
    }

    [Fact]
    public void AnUnboundMapIsAnErrorNamingIt()
    {
        var program = new InstructionBuilder().LoadMap(Register.R1, "targets").Mov64(Register.R0, 0).Exit().Assemble();
        var missing = Assert.Throws<AssemblerException>(() => program.BindMaps(new Dictionary<string, int> { ["ring"] = 3 }));
        Assert.Contains("'targets'", missing.Message);
        Assert.Contains("given: ring", missing.Message);
        var unbound = Assert.Throws<ArgumentException>(() => ProgramSpec.Of("p", ProgramType.Kprobe, program));
        Assert.Contains("targets", unbound.Message);
    }

    [Fact]
    public void StackSlotsAreAlignedDisjointAndBounded()
    {
        var stack = new StackSlots();
        Assert.Equal(-8, stack.Allocate(4));
        Assert.Equal(-32, stack.Allocate(24));
        Assert.Equal(-40, stack.Allocate(1));
        stack.Allocate(StackSlots.Size - 40);
        var full = Assert.Throws<AssemblerException>(() => stack.Allocate(8, "one more"));
        Assert.Contains("'one more'", full.Message);
    }

    [Fact]
    public void AFragmentWithScopedLabelsCanBeEmittedTwice()
    {
        static void Fragment(InstructionBuilder code)
        {
            var labels = code.Scope("clamp");
            code.JumpIf(JumpCondition.LessOrEqual, Register.R0, 10, labels["ok"])
                .Mov64(Register.R0, 10)
                .Label(labels["ok"])
                .Add64(Register.R0, 1);
        }

        var code = new InstructionBuilder().Mov64(Register.R0, 50);
        Fragment(code);
        Fragment(code);
        var program = code.Exit().Assemble();
        Assert.Equal(2, program.SymbolSlots.Count);
        Assert.Equal([3, 6], program.SymbolSlots.Values.Order());
    }
}
