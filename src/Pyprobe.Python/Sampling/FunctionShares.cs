using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Sampling;

/// <summary>A function's part of the samples: where it ran itself (own) and where it was on the stack (total).</summary>
/// <param name="FirstLine">co_firstlineno: with the file it tells two functions of the same name apart.</param>
/// <param name="OwnHeldGil">Of <paramref name="Own"/>, the samples whose thread held the GIL (where the sampler told).</param>
/// <param name="IsNative">A C function (<c>--native</c>): <paramref name="File"/> is its file's name, there is no first line.</param>
public sealed record FunctionShare(string Function, string File, int FirstLine, long Own, long Total, long OwnHeldGil = 0, bool IsNative = false);

/// <summary>Per-function own and total sample counts of a profile, as a sampling top shows them.</summary>
public static class FunctionShares
{
    /// <summary>
    /// Functions are keyed by code object (name, file, first line), not by line; a C function (<c>--native</c>) by its
    /// name and file. A recursive function counts once per sample in its total; thread roots and markers are not functions.
    /// </summary>
    public static IReadOnlyList<FunctionShare> Of(StackProfile profile) =>
        Shares(profile, frame => frame.Kind is FrameKind.Python or FrameKind.Unknown or FrameKind.Native ? (frame.Function, frame.File, frame.FirstLine) : null);

    /// <summary>
    /// Per asyncio task (a profile sampled with its tasks, <c>top --tasks</c>), by name: own, the samples taken in the task
    /// itself; total, those taken in it or in a task it awaits (the chain of awaiters each sample is rooted at). The
    /// share's function is the task's name; samples outside any task are in no row.
    /// </summary>
    public static IReadOnlyList<FunctionShare> TasksOf(StackProfile profile) =>
        Shares(profile, frame => StackFrame.TaskName(frame) is { } task ? (task, "", 0) : null);

    /// <summary>
    /// The rows keyed by <paramref name="keyOf"/> (null: a frame that is no row's): total, the samples whose stack holds
    /// the key (once per sample, however often); own, those whose innermost keyed frame it is.
    /// </summary>
    private static IReadOnlyList<FunctionShare> Shares(StackProfile profile, Func<StackFrame, (string Function, string File, int FirstLine)?> keyOf)
    {
        var own = new Dictionary<(string, string, int), long>();
        var ownHeld = new Dictionary<(string, string, int), long>();
        var native = new HashSet<(string, string, int)>();
        var total = new Dictionary<(string, string, int), long>();
        var seen = new HashSet<(string, string, int)>();
        foreach (var stack in profile.Stacks)
        {
            seen.Clear();
            (string, string, int)? leaf = null;
            foreach (var frame in profile.FramesOf(stack))
            {
                if (keyOf(frame) is not { } key) continue;
                if (frame.Kind == FrameKind.Native) native.Add(key);
                leaf = key;
                if (seen.Add(key)) total[key] = total.GetValueOrDefault(key) + stack.Count;
            }
            if (leaf is { } l)
            {
                own[l] = own.GetValueOrDefault(l) + stack.Count;
                ownHeld[l] = ownHeld.GetValueOrDefault(l) + stack.HeldGil;
            }
        }
        return total.Select(t => new FunctionShare(t.Key.Item1, t.Key.Item2, t.Key.Item3, own.GetValueOrDefault(t.Key), t.Value, ownHeld.GetValueOrDefault(t.Key), native.Contains(t.Key)))
            .OrderByDescending(f => f.Own).ThenByDescending(f => f.Total).ThenBy(f => f.Function, StringComparer.Ordinal)
            .ToList();
    }
}
