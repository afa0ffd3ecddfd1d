namespace Pyprobe.Bpf.Programs;

/// <summary>
/// A program ready to load: raw little-endian bytecode (8 bytes a slot). "GPL" is needed for
/// bpf_probe_read_user and friends; pyprobe's generated programs use them.
/// </summary>
public sealed record ProgramSpec(string Name, ProgramType Type, ReadOnlyMemory<byte> Bytecode, AttachType ExpectedAttachType = AttachType.None, string License = "GPL")
{
    public int SlotCount => Bytecode.Length / 8;
}
