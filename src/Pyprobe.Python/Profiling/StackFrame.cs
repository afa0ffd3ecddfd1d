using System.Globalization;

namespace Pyprobe.Python.Profiling;

/// <summary>What a frame of a sampled stack stands for.</summary>
public enum FrameKind : byte
{
    /// <summary>A Python function at a line.</summary>
    Python,
    /// <summary>The root added per thread by <c>--threads</c>: <c>thread TID (NAME)</c>.</summary>
    ThreadRoot,
    /// <summary>A code object that was freed (or its address reused) before user space could read it.</summary>
    Unknown,
    /// <summary>Stands for the outer frames the kernel did not walk: the stack was deeper than the walk limit.</summary>
    Truncated,
    /// <summary>Machine code (<c>record --native</c>): a C function of the interpreter, an extension module or a library.</summary>
    Native,
}

/// <summary>
/// One frame of a sampled stack. Two frames are the same frame when all fields are equal, so a function seen at
/// two lines is two frames (as in flamegraph.pl's input); <paramref name="FirstLine"/> follows from the code object
/// and so never splits a frame.
/// </summary>
/// <param name="Function">co_qualname where the version has it (3.11+), else co_name; for other kinds a fixed text.</param>
/// <param name="File">co_filename; empty for frames that are not Python code.</param>
/// <param name="Line">The line being executed in this frame (for a caller: the line of the call); 0 when unknown.</param>
/// <param name="FirstLine">co_firstlineno (the def line), 0 when unknown: pprof's function start line.</param>
public readonly record struct StackFrame(string Function, string File, int Line, FrameKind Kind, int FirstLine = 0)
{
    /// <summary>A Python frame.</summary>
    public static StackFrame Python(string function, string file, int line, int firstLine = 0) =>
        new(function, file, line, FrameKind.Python, firstLine);

    /// <summary>The per-thread root frame of <c>--threads</c>, <c>thread 4242 (MainThread)</c>.</summary>
    public static StackFrame ThreadRoot(int tid, string? threadName) =>
        new(string.IsNullOrEmpty(threadName)
                ? string.Create(CultureInfo.InvariantCulture, $"thread {tid}")
                : string.Create(CultureInfo.InvariantCulture, $"thread {tid} ({threadName})"),
            "", 0, FrameKind.ThreadRoot);

    /// <summary>
    /// The root added under the thread's by <c>record --tasks</c>: <c>task NAME</c>, an asyncio task of the sample's chain;
    /// one awaited by several tasks says how many (<c>task shared (2 parents)</c>, CPython's sampler's wording).
    /// </summary>
    public static StackFrame TaskRoot(string taskName, int awaiters = 0) =>
        new(awaiters > 1 ? $"task {taskName} ({awaiters} parents)" : $"task {taskName}", "", 0, FrameKind.ThreadRoot);

    /// <summary>What follows <c>task </c> in a <see cref="TaskRoot"/> (<c>shared (2 parents)</c>); null for any other frame.</summary>
    public static string? TaskName(StackFrame frame) =>
        frame.Kind == FrameKind.ThreadRoot && frame.Function.StartsWith("task ", StringComparison.Ordinal) ? frame.Function[5..] : null;

    /// <summary>
    /// A native function (<c>record --native</c>): <paramref name="function"/> is its symbol, or <c>FILE+0xOFFSET</c> of its
    /// start where the file names none; <paramref name="module"/> the file's name (<c>libz.so.1</c>).
    /// </summary>
    public static StackFrame Native(string function, string module) => new(function, module, 0, FrameKind.Native);

    /// <summary>A kernel function (<c>--kernel</c>): native, its "file" <c>[kernel]</c> or <c>[MODULE]</c> as perf writes them.</summary>
    public static StackFrame Kernel(string function, string module) => Native(function, $"[{module}]");

    /// <summary>A frame whose code object was gone before it could be resolved.</summary>
    public static StackFrame Unknown { get; } = new("<unknown (code object freed)>", "", 0, FrameKind.Unknown);

    /// <summary>Put at the root of a stack the kernel cut short: the frames above it are missing.</summary>
    public static StackFrame Truncated { get; } = new("<truncated>", "", 0, FrameKind.Truncated);

    /// <summary>
    /// How every text format names the frame: <c>FUNC (FILE:LINE)</c> for Python code, <c>FUNC (MODULE)</c> for native code, the bare text otherwise.
    /// </summary>
    public string Label => Kind switch
    {
        FrameKind.Python => string.Create(CultureInfo.InvariantCulture, $"{Function} ({File}:{Line})"),
        FrameKind.Native => $"{Function} ({File})",
        _ => Function,
    };
}
