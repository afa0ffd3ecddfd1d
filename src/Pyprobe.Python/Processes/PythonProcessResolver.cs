using Pyprobe.Usdt.Elf;
using Pyprobe.Bpf.Launch;


namespace Pyprobe.Python.Processes;

/// <summary>
/// Turns a PID into the file to attach CPython probes to: the first candidate from
/// <see cref="PythonProcessFiles.Locate"/> (libpython, then main executable, then python-named
/// mapped files) whose .note.stapsdt has provider "python". Failures are distinguished:
/// <see cref="ProcessNotFoundException"/>, <see cref="NotAPythonProcessException"/>,
/// <see cref="PythonWithoutProbesException"/>.
/// </summary>
public static class PythonProcessResolver
{
    public const string PythonProvider = "python";

    public static PythonProcessTarget Resolve(int pid) =>
        ResolveIfItHasProbes(pid, out var withoutProbes) ?? throw new PythonWithoutProbesException(pid, withoutProbes!.DisplayPath);

    /// <summary>
    /// As <see cref="Resolve"/>, but a Python without probes is no failure: null, and <paramref name="withoutProbes"/> is
    /// its file. Callers that go on without probes (function events from _PyEval_EvalFrameDefault) take this path: an
    /// exception thrown and caught cost a millisecond or more of their launch.
    /// </summary>
    public static PythonProcessTarget? ResolveIfItHasProbes(int pid, out MappedPythonFile? withoutProbes)
    {
        withoutProbes = null;
        if (pid <= 0)
            throw new ProcessNotFoundException(pid);
        var (candidates, exe) = PythonProcessFiles.Locate(pid);
        LaunchPhases.Mark("resolve: /proc/PID/maps read");

        MappedPythonFile? pythonWithoutProbes = null;
        foreach (var c in candidates)
        {
            UsdtBinary binary;
            try
            {
                binary = UsdtBinary.Open(c.OpenPath);
            }
            catch (UsdtException)
            {
                // Unreadable or not ELF (e.g. a deleted mapping we may not open): keep looking; a
                // python-named file that we cannot inspect still proves this is Python.
                if (c.Kind != MappedPythonFileKind.MainExecutable)
                    pythonWithoutProbes ??= c;
                continue;
            }
            if (binary.HasProvider(PythonProvider))
                return new PythonProcessTarget(pid, c.HostPath, c.DisplayPath, binary, c.Kind, exe);
            if (c.Kind != MappedPythonFileKind.MainExecutable || LooksLikeCPython(binary.Elf))
                pythonWithoutProbes ??= c;
        }

        if (!Directory.Exists($"/proc/{pid}"))
            throw new ProcessNotFoundException(pid);
        if (pythonWithoutProbes is not null)
        {
            withoutProbes = pythonWithoutProbes;
            return null;
        }
        throw new NotAPythonProcessException(pid, exe);
    }

    /// <summary>An executable that statically contains the CPython runtime (whatever its name, e.g. an embedding app).</summary>
    internal static bool LooksLikeCPython(ElfImage elf) =>
        elf.FindSymbols("_PyRuntime").Any(s => s.IsDefined) || elf.FindSymbols("Py_Initialize").Any(s => s.IsDefined);
}
