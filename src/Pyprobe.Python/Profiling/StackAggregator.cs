using System.Runtime.InteropServices;

namespace Pyprobe.Python.Profiling;

/// <summary>
/// Adds samples up as they arrive: frames are interned to small ids, and identical stacks share one counter.
/// Adding a stack that was seen before allocates nothing (the lookup goes by span). Not thread-safe: one
/// consumer drains the sampler and adds.
/// </summary>
public sealed class StackAggregator
{
    private readonly Dictionary<StackFrame, int> _frameIds = [];
    private readonly List<StackFrame> _frames = [];
    // Stack (ids, root first) -> its index in _stacks/_counts, in first-seen order.
    private readonly Dictionary<int[], int> _stackIndex = new(StackKeyComparer.Instance);
    private readonly Dictionary<int[], int>.AlternateLookup<ReadOnlySpan<int>> _stackIndexBySpan;
    private readonly List<int[]> _stacks = [];
    private readonly List<long> _counts = [];
    private readonly List<long> _heldGil = [];
    private int[] _scratch = new int[64];

    public StackAggregator() => _stackIndexBySpan = _stackIndex.GetAlternateLookup<ReadOnlySpan<int>>();

    /// <summary>Distinct frames seen so far.</summary>
    public int FrameCount => _frames.Count;

    /// <summary>Distinct stacks seen so far.</summary>
    public int StackCount => _stacks.Count;

    /// <summary>The frame's id: the same id for every equal frame.</summary>
    public int Intern(in StackFrame frame)
    {
        ref int id = ref CollectionsMarshal.GetValueRefOrAddDefault(_frameIds, frame, out bool exists);
        if (!exists)
        {
            id = _frames.Count;
            _frames.Add(frame);
        }
        return id;
    }

    /// <summary>
    /// Counts <paramref name="count"/> samples of a stack given as interned ids, root first, <paramref name="heldGil"/> of
    /// them taken while the thread held the GIL.
    /// </summary>
    public void Add(ReadOnlySpan<int> frameIdsRootFirst, long count = 1, long heldGil = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(heldGil);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(heldGil, count);
        foreach (int id in frameIdsRootFirst)
            if ((uint)id >= (uint)_frames.Count)
                throw new ArgumentOutOfRangeException(nameof(frameIdsRootFirst), id, "not an interned frame id");
        if (_stackIndexBySpan.TryGetValue(frameIdsRootFirst, out int index))
        {
            CollectionsMarshal.AsSpan(_counts)[index] += count;
            CollectionsMarshal.AsSpan(_heldGil)[index] += heldGil;
            return;
        }
        int[] key = frameIdsRootFirst.ToArray();
        _stackIndex.Add(key, _stacks.Count);
        _stacks.Add(key);
        _counts.Add(count);
        _heldGil.Add(heldGil);
    }

    /// <summary>Counts samples of a stack of frames, root first (interning them).</summary>
    public void Add(ReadOnlySpan<StackFrame> framesRootFirst, long count = 1, long heldGil = 0)
    {
        if (_scratch.Length < framesRootFirst.Length)
            _scratch = new int[Math.Max(framesRootFirst.Length, _scratch.Length * 2)];
        for (int i = 0; i < framesRootFirst.Length; i++)
            _scratch[i] = Intern(framesRootFirst[i]);
        Add(_scratch.AsSpan(0, framesRootFirst.Length), count, heldGil);
    }

    /// <summary>A snapshot of what was added, with the recording's metadata.</summary>
    public StackProfile Build(ProfileMetadata metadata) =>
        new([.. _frames], [.. _stacks.Select((key, i) => new StackCount(key, _counts[i], _heldGil[i]))], metadata);

    private sealed class StackKeyComparer : IEqualityComparer<int[]>, IAlternateEqualityComparer<ReadOnlySpan<int>, int[]>
    {
        public static readonly StackKeyComparer Instance = new();

        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(int[] key) => Hash(key);
        public bool Equals(ReadOnlySpan<int> alternate, int[] other) => alternate.SequenceEqual(other);
        public int GetHashCode(ReadOnlySpan<int> alternate) => Hash(alternate);
        public int[] Create(ReadOnlySpan<int> alternate) => alternate.ToArray();

        private static int Hash(ReadOnlySpan<int> ids)
        {
            var hash = new HashCode();
            hash.AddBytes(MemoryMarshal.AsBytes(ids));
            return hash.ToHashCode();
        }
    }
}
