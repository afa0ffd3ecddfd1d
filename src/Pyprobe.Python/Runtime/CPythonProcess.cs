using Pyprobe.Usdt.Elf;
using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Runtime;

/// <summary>
/// The runtime model bound to one running process: the <see cref="CPythonBinary"/> that defines
/// _PyRuntime, its load bias from /proc/PID/maps, and read-only memory access. Addresses from the
/// binary's model become process addresses through <see cref="Address"/>.
/// </summary>
public sealed class CPythonProcess : IDisposable
{
    private CPythonProcess(int pid, CPythonBinary binary, ulong loadBias, ProcessMemory memory)
    {
        Pid = pid;
        Binary = binary;
        LoadBias = loadBias;
        Memory = memory;
    }

    public int Pid { get; }
    public CPythonBinary Binary { get; }
    public RuntimeLayout Layout => Binary.Layout;
    /// <summary>Process address minus link-time address of the runtime binary (0 for a non-PIE executable).</summary>
    public ulong LoadBias { get; }
    public ProcessMemory Memory { get; }

    public ulong Address(ulong fileAddress) => fileAddress + LoadBias;
    public ulong RuntimeAddress => Address(Binary.Symbols.PyRuntime);

    /// <summary>
    /// Resolves <paramref name="pid"/>: the first mapped file that defines _PyRuntime (libpython,
    /// then the executable, then python-named files). Throws <see cref="ProcessNotFoundException"/>,
    /// <see cref="NotAPythonProcessException"/> or <see cref="UnsupportedRuntimeException"/>.
    /// </summary>
    public static CPythonProcess Attach(int pid)
    {
        if (pid <= 0) throw new ProcessNotFoundException(pid);
        var (candidates, exe, maps) = PythonProcessFiles.LocateWithMaps(pid);
        foreach (var c in candidates)
        {
            if (BinaryOf(c.OpenPath, c.DisplayPath) is not { } binary) continue;
            var bias = LoadBiasOf(binary.Elf, c.DisplayPath, maps)
                ?? throw new UnsupportedRuntimeException($"process {pid}: cannot find where {c.DisplayPath} is mapped");
            return new CPythonProcess(pid, binary, bias, ProcessMemory.Open(pid));
        }
        throw new NotAPythonProcessException(pid, exe);
    }

    private static readonly Dictionary<(string Path, string Display, long Length, DateTime Modified), CPythonBinary?> Binaries = [];

    /// <summary>
    /// The runtime model of a file, or null when it does not define _PyRuntime. Resolved once per file (by path, size
    /// and modification time): a machine-wide profile or exporter sees many processes of few interpreters.
    /// </summary>
    private static CPythonBinary? BinaryOf(string openPath, string displayPath)
    {
        (string, string, long, DateTime) key;
        try
        {
            var file = new FileInfo(openPath);
            key = (file.FullName, displayPath, file.Length, file.LastWriteTimeUtc);
        }
        catch (IOException) { return null; }
        lock (Binaries)
        {
            if (Binaries.TryGetValue(key, out var known)) return known;
        }
        CPythonBinary? binary = null;
        try
        {
            var elf = ElfImage.Open(openPath);
            if (CPythonBinary.DefinesRuntime(elf)) binary = CPythonBinary.FromElf(elf, openPath, displayPath);
        }
        catch (UsdtException) { return null; }
        lock (Binaries) Binaries[key] = binary;
        return binary;
    }

    /// <summary>
    /// The load bias: the mapping of the file's first PT_LOAD (matched by its page-aligned file
    /// offset) starts at bias + the segment's page-aligned virtual address.
    /// </summary>
    internal static ulong? LoadBiasOf(ElfImage elf, string displayPath, IReadOnlyList<ProcMapsEntry> maps)
    {
        if (elf.LoadSegments.Count == 0) return null;
        var first = elf.LoadSegments.MinBy(s => s.FileOffset)!;
        const ulong page = 0xfff;
        var mapping = maps.FirstOrDefault(m => m.Path is { } p && (p == displayPath || p.EndsWith(displayPath, StringComparison.Ordinal))
            && m.Offset == (first.FileOffset & ~page));
        return mapping is null ? null : mapping.Start - (first.VirtualAddress & ~page);
    }

    /// <summary>Every interpreter (main first, then subinterpreters), bounded.</summary>
    public IEnumerable<ulong> Interpreters(int max = 64)
    {
        ulong interp = Memory.ReadU64(RuntimeAddress + (ulong)Layout.Runtime.InterpretersHead);
        for (int i = 0; interp != 0 && i < max; i++)
        {
            yield return interp;
            interp = Memory.ReadU64(interp + (ulong)Layout.Interpreter.Next);
        }
    }

    /// <summary>The thread states of one interpreter, bounded.</summary>
    public IEnumerable<ulong> ThreadStates(ulong interpreter, int max = 4096)
    {
        ulong tstate = Memory.ReadU64(interpreter + (ulong)Layout.Interpreter.ThreadsHead);
        for (int i = 0; tstate != 0 && i < max; i++)
        {
            yield return tstate;
            tstate = Memory.ReadU64(tstate + (ulong)Layout.ThreadState.Next);
        }
    }

    /// <summary>
    /// The fs-relative offset of _Py_tss_tstate in this process (3.12+), or null when the binary's
    /// access form is unknown. <paramref name="threadPointer"/> is any Python thread's pthread_self()
    /// (its PyThreadState.thread_id, = fsbase on glibc); only the general-dynamic form needs it, to
    /// reach the thread's dtv: fsbase+8 → dtv, dtv[module].pointer + module offset − fsbase.
    /// </summary>
    public long? ThreadStateTlsOffset(ulong threadPointer) => Binary.ThreadStateTls switch
    {
        ThreadStateTls.FsRelative f => f.Offset,
        ThreadStateTls.InitialExec ie => unchecked((long)Memory.ReadU64(Address(ie.GotAddress))),
        ThreadStateTls.GeneralDynamic gd => GeneralDynamicOffset(gd, threadPointer),
        _ => null,
    };

    private long GeneralDynamicOffset(ThreadStateTls.GeneralDynamic gd, ulong threadPointer)
    {
        ulong module = Memory.ReadU64(Address(gd.GotAddress));
        ulong dtv = Memory.ReadU64(threadPointer + 8);
        ulong block = Memory.ReadU64(dtv + 16 * module);
        return unchecked((long)(block + gd.ModuleOffset - threadPointer));
    }

    public void Dispose() => Memory.Dispose();
}
