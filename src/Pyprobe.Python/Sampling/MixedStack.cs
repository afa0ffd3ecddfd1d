using Pyprobe.Python.Profiling;

namespace Pyprobe.Python.Sampling;

/// <summary>What a native frame is to the Python stack it is merged with.</summary>
public enum NativeFrameRole : byte
{
    /// <summary>The interpreter's eval loop (<c>_PyEval_EvalFrameDefault</c>): it stands for the Python frames it ran.</summary>
    EvalLoop,
    /// <summary>Other C code of the interpreter itself (the executable or libpython): calls, object protocols, builtins.</summary>
    Interpreter,
    /// <summary>Code of any other file: extension modules, libc, libz, libcrypto, ...</summary>
    Other,
}

/// <summary>One unwound native frame, named and placed.</summary>
public readonly record struct NativeFrame(StackFrame Frame, NativeFrameRole Role);

/// <summary>
/// Puts a sample's Python frames into its native stack, as <c>py-spy --native</c> does: each eval-loop frame is replaced by
/// the Python frames that run of the loop executed (up to the frame the walk marked as its first), so a C function
/// called from Python sits under the Python line that called it and a Python callback under the C code that called it.
/// </summary>
/// <remarks>
/// What is kept of the native frames: everything below the innermost Python frame (what the running Python line called:
/// a builtin, an extension, the library under it); between Python frames, the frames of other files (an extension that
/// calls back into Python), not the interpreter's own call machinery; nothing outside the outermost Python frame (the
/// interpreter's start, <c>main</c>, <c>clone</c>), which every sample shares. Python frames the native unwinding did
/// not reach (a stack deeper than its copy) are put on the outside, as the Python-only stack has them; where it stopped
/// without an eval-loop frame at all, the native frames it found are what the innermost Python frame called.
/// </remarks>
public static class MixedStack
{
    /// <param name="python">The sample's Python frames, innermost first.</param>
    /// <param name="startsRun">Per Python frame: whether it is the first (outermost) of its eval-loop run.</param>
    /// <param name="native">The unwound native frames, innermost first.</param>
    /// <param name="innermostFirst">Receives the merged stack, innermost first.</param>
    /// <param name="reachedEnd">Whether the native unwinding went all the way to the thread's first frame.</param>
    /// <returns>
    /// False when the two stacks do not pair up — more eval-loop frames than runs of Python frames, or fewer in a native
    /// stack unwound to its end: a sample taken while a call crossed between C and Python, one side already changed. Only
    /// the native frames below the innermost eval-loop frame are then put in, under every Python frame.
    /// </returns>
    public static bool Merge(IReadOnlyList<StackFrame> python, IReadOnlyList<bool> startsRun, IReadOnlyList<NativeFrame> native, List<StackFrame> innermostFirst,
        bool reachedEnd = false)
    {
        var runs = 0;
        for (var i = 0; i < python.Count; i++)
            if (startsRun[i] || i == python.Count - 1) runs++;
        var evalLoops = native.Count(f => f.Role == NativeFrameRole.EvalLoop);
        if (evalLoops > runs || (reachedEnd && evalLoops < runs))
        {
            foreach (var frame in native)
            {
                if (frame.Role == NativeFrameRole.EvalLoop) break;
                innermostFirst.Add(frame.Frame);
            }
            innermostFirst.AddRange(python);
            return false;
        }

        int lastEval = -1;
        for (var i = native.Count - 1; i >= 0; i--)
        {
            if (native[i].Role != NativeFrameRole.EvalLoop) continue;
            lastEval = i;
            break;
        }
        var next = 0;
        var pastPython = false;
        for (var i = 0; i < native.Count; i++)
        {
            var frame = native[i];
            if (frame.Role == NativeFrameRole.EvalLoop)
            {
                while (next < python.Count)
                {
                    innermostFirst.Add(python[next]);
                    if (startsRun[next++]) break;
                }
                pastPython = true;
                continue;
            }
            // Outside the outermost run with every Python frame placed: the thread's start, shared by all samples.
            if (i > lastEval && lastEval >= 0 && next >= python.Count) break;
            if (pastPython && frame.Role == NativeFrameRole.Interpreter) continue;
            innermostFirst.Add(frame.Frame);
        }
        for (; next < python.Count; next++) innermostFirst.Add(python[next]);
        return true;
    }
}
