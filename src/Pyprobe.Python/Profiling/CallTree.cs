namespace Pyprobe.Python.Profiling;

/// <summary>
/// A node of the merged call tree: all stacks that share a prefix share its nodes. The root stands for every
/// sample ("all") and has no frame.
/// </summary>
/// <param name="FrameId">Index into <see cref="StackProfile.Frames"/>; -1 for the root.</param>
/// <param name="Depth">0 for the root, 1 for the outermost frames.</param>
/// <param name="Start">Samples of the earlier siblings' subtrees and of the parent's start: where the node begins on a
/// flame graph's x axis, in samples.</param>
/// <param name="Total">Samples whose stack passes through this node.</param>
/// <param name="Self">Samples whose stack ends at this node.</param>
public sealed record CallTreeNode(int FrameId, int Depth, long Start, long Total, long Self, IReadOnlyList<CallTreeNode> Children);

/// <summary>
/// Merges a profile's stacks into a tree whose siblings are ordered by frame label (ordinal), as flamegraph.pl
/// orders them, so the layout depends only on the counts.
/// </summary>
public static class CallTree
{
    public static CallTreeNode Build(StackProfile profile)
    {
        var root = new Building(-1);
        foreach (StackCount stack in profile.Stacks)
        {
            if (stack.Count == 0)
                continue;
            Building node = root;
            node.Total += stack.Count;
            foreach (int id in stack.FrameIds)
            {
                if (!node.Children.TryGetValue(id, out Building? child))
                    node.Children.Add(id, child = new Building(id));
                node = child;
                node.Total += stack.Count;
            }
            node.Self += stack.Count;
        }
        return root.Freeze(profile.Frames, depth: 0, start: 0);
    }

    /// <summary>Every node, parents before children, siblings in order.</summary>
    public static IEnumerable<CallTreeNode> Walk(CallTreeNode root)
    {
        var pending = new Stack<CallTreeNode>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            CallTreeNode node = pending.Pop();
            yield return node;
            for (int i = node.Children.Count - 1; i >= 0; i--)
                pending.Push(node.Children[i]);
        }
    }

    private sealed class Building(int frameId)
    {
        public readonly Dictionary<int, Building> Children = [];
        public long Total;
        public long Self;

        public CallTreeNode Freeze(IReadOnlyList<StackFrame> frames, int depth, long start)
        {
            var children = new List<CallTreeNode>(Children.Count);
            long childStart = start;
            foreach (Building child in Children.Values
                         .OrderBy(c => frames[c.FrameId].Label, StringComparer.Ordinal)
                         .ThenBy(c => c.FrameId))
            {
                children.Add(child.Freeze(frames, depth + 1, childStart));
                childStart += child.Total;
            }
            return new CallTreeNode(frameId, depth, start, Total, Self, children);
        }

        private int FrameId => frameId;
    }
}
