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

    /// <summary>Whether <paramref name="probe"/> fires on CPython major.minor = 3.<paramref name="minor"/> (the facts live in Runtime/).</summary>
    public static ProbeSupport Support(string probe, int major, int minor) => Runtime.CPythonFacts.ProbeSupport(probe, major, minor);
}
