namespace Pyprobe.Python.Probes;

/// <summary>
/// What CPython's probes carry and when they fire, per version (facts in shared/notes/cpython.md §1).
/// </summary>
public static class PythonProbeCatalog
{
    public const string Provider = "python";

    private static readonly ProbeArgument Filename = new("filename", "const char *", ProbeArgumentKind.CString);
    private static readonly ProbeArgument Funcname = new("funcname", "const char *", ProbeArgumentKind.CString);
    private static readonly ProbeArgument Lineno = new("lineno", "int", ProbeArgumentKind.Integer);

    public static IReadOnlyList<PythonProbe> All { get; } =
    [
        new("function__entry", "a Python function starts executing", [Filename, Funcname, Lineno]),
        new("function__return", "a Python function returns, yields or unwinds", [Filename, Funcname, Lineno]),
        new("line", "a new source line starts executing", [Filename, Funcname, Lineno]),
        new("gc__start", "the cyclic garbage collector starts", [new("generation", "int", ProbeArgumentKind.Integer)]),
        new("gc__done", "the cyclic garbage collector finished", [new("collected", "Py_ssize_t", ProbeArgumentKind.Integer)]),
        new("import__find__load__start", "a module not yet in sys.modules starts loading", [new("module", "const char *", ProbeArgumentKind.CString)]),
        new("import__find__load__done", "a module finished loading", [new("module", "const char *", ProbeArgumentKind.CString), new("found", "int", ProbeArgumentKind.Boolean)]),
        new("audit", "sys.audit() / PySys_Audit() event", [new("event", "const char *", ProbeArgumentKind.CString), new("args", "PyObject * (tuple)", ProbeArgumentKind.Pointer)]),
    ];

    public static PythonProbe? Find(string name) => All.FirstOrDefault(p => p.Name == name);

    /// <summary>Declared in pydtrace.d but never emitted by any CPython; listed so users are not surprised.</summary>
    public static bool IsNeverEmitted(string name) => name.StartsWith("instance__", StringComparison.Ordinal);

    /// <summary>Whether <paramref name="probe"/> fires on CPython major.minor = 3.<paramref name="minor"/>.</summary>
    public static ProbeSupport Support(string probe, int major, int minor)
    {
        if (IsNeverEmitted(probe)) return ProbeSupport.No("declared in pydtrace.d but never emitted by CPython");
        if (major != 3) return ProbeSupport.No($"pyprobe knows CPython 3 only, this is {major}.{minor}");
        return probe switch
        {
            "function__entry" => minor switch
            {
                <= 10 => ProbeSupport.Yes(),
                11 => ProbeSupport.Partly("3.11 emits entries only while tracing is on; pyprobe raises the 'line' semaphore to turn it on (about 10x slower on call-heavy code)"),
                <= 14 => ProbeSupport.No($"removed in 3.12 (PEP 669), restored in 3.15"),
                _ => ProbeSupport.Partly("restored in 3.15: generator creation adds an entry without a return, throw() has no entry, and the JIT (when on) hides most calls"),
            },
            "function__return" => minor switch
            {
                <= 11 => ProbeSupport.Yes(),
                <= 14 => ProbeSupport.No("removed in 3.12 (PEP 669), restored in 3.15"),
                _ => ProbeSupport.Partly("restored in 3.15: the JIT (when on) hides most returns"),
            },
            "line" => minor switch
            {
                <= 11 => ProbeSupport.Yes(),
                _ => ProbeSupport.No("removed in 3.12 (PEP 669) and not restored"),
            },
            "audit" => minor >= 8 ? ProbeSupport.Yes() : ProbeSupport.No("added in 3.8"),
            "import__find__load__start" or "import__find__load__done" => minor >= 7 ? ProbeSupport.Yes("only for modules not yet in sys.modules") : ProbeSupport.No("added in 3.7"),
            "gc__start" or "gc__done" => ProbeSupport.Yes(),
            _ => ProbeSupport.No("not a CPython probe"),
        };
    }
}
