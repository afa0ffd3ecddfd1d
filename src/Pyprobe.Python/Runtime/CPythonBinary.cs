using Pyprobe.Python.Versions;
using Pyprobe.Usdt.Elf;
using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Runtime;

/// <summary>How the interpreter was built, as far as a stack walker cares.</summary>
/// <param name="SharedLibrary">The runtime lives in libpython3.X.so (pyenv, Fedora, Docker) rather than in the executable (Debian's static python3.X).</param>
/// <param name="Debug">A Py_DEBUG build (reference-count debugging symbols present).</param>
/// <param name="FreeThreaded">A free-threaded (no-GIL, 3.13t+) build.</param>
/// <param name="JitCapable">Built with the experimental JIT (it may still be off at run time).</param>
public sealed record CPythonBuild(bool SharedLibrary, bool Debug, bool FreeThreaded, bool JitCapable);

/// <summary>File (link-time) addresses of the runtime's symbols; add the process's load bias to use them.</summary>
public sealed record RuntimeSymbols(ulong PyRuntime, ulong? EvalFrameDefault, ulong? NoneStruct, ulong? CodeType,
    ulong? ThreadStateGetCurrent, ulong? GetEvalFrameFunc, ulong? FinalizeEx);

/// <summary>
/// The runtime model of one CPython binary (the executable or libpython that defines _PyRuntime),
/// resolved once: version, build, the layout from _Py_DebugOffsets (3.13+) or the table (3.8–3.12),
/// symbols, how to find a thread's thread state, and the eval-frame hook offset. Anything pyprobe
/// cannot model (unknown version, free-threaded or debug build before 3.13) throws
/// <see cref="UnsupportedRuntimeException"/> with a one-line reason.
/// </summary>
public sealed class CPythonBinary
{
    private CPythonBinary(string openPath, string displayPath, ElfImage elf, CPythonFacts facts, CPythonBuild build, RuntimeLayout layout,
        DebugOffsets? debugOffsets, RuntimeSymbols symbols, ThreadStateTls? tls, int? hook)
    {
        OpenPath = openPath;
        DisplayPath = displayPath;
        Elf = elf;
        Facts = facts;
        Build = build;
        Layout = layout;
        DebugOffsets = debugOffsets;
        Symbols = symbols;
        ThreadStateTls = tls;
        EvalFrameHookOffset = hook;
    }

    /// <summary>Where the file is read from (may be /proc/PID/root/…).</summary>
    public string OpenPath { get; }
    /// <summary>The path as the process sees it.</summary>
    public string DisplayPath { get; }

    /// <summary>
    /// The path to put uprobes on for process <paramref name="pid"/>: the file as that process sees it (through its
    /// root, so a container's own file), or <see cref="OpenPath"/> where that view is not reachable.
    /// </summary>
    public string UprobePathFor(int pid)
    {
        var path = $"/proc/{pid}/root{DisplayPath}";
        return File.Exists(path) ? path : OpenPath;
    }
    public ElfImage Elf { get; }
    public CPythonFacts Facts { get; }
    public PythonVersion Version => Facts.Version;
    public CPythonBuild Build { get; }
    public RuntimeLayout Layout { get; }
    /// <summary>The whole _Py_DebugOffsets struct (3.13+), null before.</summary>
    public DebugOffsets? DebugOffsets { get; }
    public RuntimeSymbols Symbols { get; }
    /// <summary>How to read _Py_tss_tstate (3.12+); null before 3.12 or when the code has an unknown shape.</summary>
    public ThreadStateTls? ThreadStateTls { get; }
    /// <summary>offsetof(PyInterpreterState, eval_frame) decoded from _PyInterpreterState_GetEvalFrameFunc (3.11+).</summary>
    public int? EvalFrameHookOffset { get; }

    /// <summary>Whether this ELF file defines the CPython runtime.</summary>
    public static bool DefinesRuntime(ElfImage elf) => elf.TryFindUniqueSymbol("_PyRuntime") is not null;

    public static CPythonBinary Open(string openPath, string? displayPath = null) => FromElf(ElfImage.Open(openPath), openPath, displayPath ?? openPath);

    public static CPythonBinary FromElf(ElfImage elf, string openPath, string displayPath)
    {
        var runtime = elf.TryFindUniqueSymbol("_PyRuntime")?.Value
            ?? throw new UnsupportedRuntimeException($"{displayPath} does not define _PyRuntime: it is not a CPython runtime");
        DebugOffsets? debugOffsets = null;
        var section = elf.FindSection(".PyRuntime");
        if (section is { HasFileData: true, Size: >= 24 } && DebugOffsets.HasCookie(elf.ReadSection(section, 8)))
            debugOffsets = DebugOffsets.Parse(elf.ReadSection(section, DebugOffsets.MaxSize), displayPath);

        var version = debugOffsets?.Version ?? PythonVersionDetector.Detect(elf, displayPath)?.Version
            ?? throw new UnsupportedRuntimeException($"{displayPath}: cannot tell its CPython version");
        var facts = CPythonFacts.For(version)
            ?? throw new UnsupportedRuntimeException($"{displayPath} is CPython {version}; pyprobe knows 3.{CPythonFacts.OldestMinor}–3.{CPythonFacts.NewestMinor}");

        bool Has(params string[] names) => names.Any(n => elf.TryFindUniqueSymbol(n) is not null);
        var build = new CPythonBuild(
            SharedLibrary: elf.Kind == ElfFileKind.SharedObject && PythonProcessFiles.IsLibPythonFileName(Path.GetFileName(displayPath)),
            Debug: Has("_Py_RefTotal", "_Py_GetRefTotal", "_Py_NegativeRefcount", "_Py_GetGlobalRefTotal"),
            FreeThreaded: debugOffsets?.FreeThreaded ?? false,
            JitCapable: Has("_PyJIT_Compile", "_PyJIT_Entry", "_PyJIT_AddressInJitCode"));
        if (build.FreeThreaded)
            throw new UnsupportedRuntimeException($"{displayPath} is a free-threaded CPython {version} build, which pyprobe cannot walk yet");
        if (!facts.HasDebugOffsets && build.Debug)
            throw new UnsupportedRuntimeException($"{displayPath} is a debug (Py_DEBUG) build of CPython {version}; pyprobe's offset tables are for release builds");

        var layout = debugOffsets?.ToLayout() ?? facts.TableLayout
            ?? throw new UnsupportedRuntimeException($"{displayPath}: CPython {version} should carry _Py_DebugOffsets in a .PyRuntime section, and it does not");

        ulong? Sym(string name) => elf.TryFindUniqueSymbol(name)?.Value;
        var symbols = new RuntimeSymbols(runtime, Sym("_PyEval_EvalFrameDefault"), Sym("_Py_NoneStruct"), Sym("PyCode_Type"),
            Sym("_PyThreadState_GetCurrent"), Sym("_PyInterpreterState_GetEvalFrameFunc"), Sym("Py_FinalizeEx"));

        ThreadStateTls? tls = null;
        if (facts.HasThreadLocalThreadState && symbols.ThreadStateGetCurrent is ulong getCurrent)
            tls = MachineCode.ThreadStateTls(elf.ReadVirtual(getCurrent, 24), getCurrent,
                a => BinaryPrimitives.ReadUInt64LittleEndian(elf.ReadVirtual(a, 8)));
        int? hook = facts.HasEvalFrameHook && symbols.GetEvalFrameFunc is ulong getHook
            ? MachineCode.EvalFrameHookOffset(elf.ReadVirtual(getHook, 16))
            : null;
        return new CPythonBinary(openPath, displayPath, elf, facts, build, layout, debugOffsets, symbols, tls, hook);
    }
}
