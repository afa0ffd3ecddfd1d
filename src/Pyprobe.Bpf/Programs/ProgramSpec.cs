using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Programs;

/// <summary>
/// A program ready to load: raw little-endian bytecode (8 bytes a slot). "GPL" is needed for
/// bpf_probe_read_user and friends; pyprobe's generated programs use them.
/// </summary>
public sealed record ProgramSpec(string Name, ProgramType Type, ReadOnlyMemory<byte> Bytecode, AttachType ExpectedAttachType = AttachType.None, string License = "GPL")
{
    public int SlotCount => Bytecode.Length / 8;

    /// <summary>A spec from an assembled program whose maps are bound (<see cref="AssembledProgram.BindMaps"/>).</summary>
    /// <exception cref="ArgumentException">The program still names maps without fds.</exception>
    public static ProgramSpec Of(string name, ProgramType type, AssembledProgram program, AttachType expectedAttachType = AttachType.None)
    {
        if (program.MapReferences.Count > 0)
            throw new ArgumentException($"program '{name}' loads maps that are not bound to fds yet: {string.Join(", ", program.MapNames)}");
        return new ProgramSpec(name, type, program.Bytecode, expectedAttachType);
    }
}
