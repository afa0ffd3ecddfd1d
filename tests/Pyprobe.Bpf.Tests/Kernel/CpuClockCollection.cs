namespace Pyprobe.Bpf.Tests.Kernel;

/// <summary>
/// Tests that sample every CPU with a CPU-clock perf event run one at a time: a second sampler on the same CPUs at once
/// made the first see 169 instead of ~999 samples a second (a CI run of both classes side by side).
/// </summary>
[CollectionDefinition(Name)]
public sealed class CpuClockCollection
{
    public const string Name = "CPU-clock samplers";
}
