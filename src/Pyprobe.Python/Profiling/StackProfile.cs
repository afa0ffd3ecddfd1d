namespace Pyprobe.Python.Profiling;

/// <summary>One distinct stack and how many samples saw it.</summary>
/// <param name="FrameIds">Indexes into <see cref="StackProfile.Frames"/>, root (outermost) first.</param>
/// <param name="HeldGil">Of <paramref name="Count"/>, the samples whose thread held the GIL, where that was asked (a sampling top); else 0.</param>
public sealed record StackCount(IReadOnlyList<int> FrameIds, long Count, long HeldGil = 0);

/// <summary>
/// A finished recording: each distinct stack once with its sample count, over a table of distinct frames.
/// Built by <see cref="StackAggregator"/>; read by the output formats.
/// </summary>
public sealed class StackProfile(IReadOnlyList<StackFrame> frames, IReadOnlyList<StackCount> stacks, ProfileMetadata metadata)
{
    /// <summary>Every distinct frame once; a frame's id is its index.</summary>
    public IReadOnlyList<StackFrame> Frames { get; } = frames;

    /// <summary>Distinct stacks in the order they were first seen.</summary>
    public IReadOnlyList<StackCount> Stacks { get; } = stacks;

    public ProfileMetadata Metadata { get; } = metadata;

    /// <summary>Samples in all stacks.</summary>
    public long TotalSamples => Stacks.Sum(s => s.Count);

    /// <summary>The frames of one stack, root first.</summary>
    public IEnumerable<StackFrame> FramesOf(StackCount stack) => stack.FrameIds.Select(id => Frames[id]);

    /// <summary>
    /// The same samples with each Python frame at its function's first line (its def) instead of the line it was at: one
    /// frame per function, a caller's calls from different lines merged (record --function, as py-spy's).
    /// </summary>
    public StackProfile ByFunction()
    {
        var aggregator = new StackAggregator();
        foreach (var stack in Stacks)
            aggregator.Add(FramesOf(stack).Select(f => f.Kind == FrameKind.Python && f.FirstLine > 0 ? f with { Line = f.FirstLine } : f).ToArray(), stack.Count, stack.HeldGil);
        return aggregator.Build(Metadata);
    }
}
