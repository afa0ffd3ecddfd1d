using Pyprobe.Python.Versions;
using Pyprobe.Usdt.Elf;
using Pyprobe.Python.Processes;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Cli.Targets;

/// <summary>
/// Turns a PATH argument or a PID into a <see cref="ProbeFile"/>, and every way that can fail into a
/// one-line <see cref="CliException"/> that says what to do next.
/// </summary>
internal static class ProbeFileResolver
{
    public const string DefaultInterpreter = "python3";

    /// <summary>
    /// A file given on the command line (null: the python3 found on PATH). A name without '/'
    /// that is not a file in the current directory is looked up on PATH, as bpftrace does.
    /// Symlinks are followed for reading; the path is printed as given (or as found on PATH).
    /// </summary>
    public static ProbeFile FromPath(string? argument)
    {
        string display;
        if (argument is null)
        {
            display = ExecutableLookup.Find(DefaultInterpreter)
                ?? throw new CliException($"no {DefaultInterpreter} on PATH; give the interpreter's path, e.g. pyprobe list /usr/bin/python3.11");
        }
        else if (argument.Length == 0)
        {
            throw new UsageException("empty PATH");
        }
        else if (!argument.Contains('/') && !File.Exists(argument) && !Directory.Exists(argument))
        {
            display = ExecutableLookup.Find(argument)
                ?? throw new CliException($"{argument}: no such file, and no {argument} on PATH");
        }
        else
        {
            display = argument;
        }

        if (Directory.Exists(display))
            throw new CliException($"{display} is a directory, not an ELF file");
        if (!File.Exists(display))
            throw new CliException(new FileInfo(display).LinkTarget is null
                ? $"{display}: no such file"
                : $"{display}: dangling symbolic link");

        string real = RealPath(display);
        if (IsScript(real))
            throw new CliException(argument is null
                ? $"the {DefaultInterpreter} on PATH, {display}, is a script (a pyenv shim or wrapper?), not an ELF interpreter; give the interpreter's path, e.g. pyprobe list /usr/bin/python3.11"
                : $"{display} is a script, not an ELF interpreter; give the path of the interpreter binary itself");

        var binary = UsdtBinary.Open(real);
        var version = PythonVersionDetector.Detect(binary.Elf, real);
        if (binary.Probes.Count == 0)
            throw NoProbes(display, real, binary.Elf, version);
        return new ProbeFile(display, binary, version, null);
    }

    /// <summary>The file carrying the "python" probes in process <paramref name="pid"/>.</summary>
    public static ProbeFile FromProcess(int pid) =>
        FromProcessIfItHasProbes(pid, out var withoutProbes) ?? throw NoProbesIn(pid, withoutProbes!.DisplayPath);

    /// <summary>
    /// As <see cref="FromProcess"/>, but null for a CPython without probes (the caller goes on without them), whose file
    /// is then <paramref name="withoutProbes"/>.
    /// </summary>
    public static ProbeFile? FromProcessIfItHasProbes(int pid, out MappedPythonFile? withoutProbes)
    {
        PythonProcessTarget target;
        try
        {
            if (PythonProcessResolver.ResolveIfItHasProbes(pid, out withoutProbes) is not { } found) return null;
            target = found;
        }
        catch (ProcessNotFoundException)
        {
            throw new CliException($"no process with PID {pid}");
        }
        LaunchPhases.Mark("resolve: ELF and probe notes read");
        var detected = PythonVersionDetector.Detect(target.UsdtBinary.Elf, target.DisplayPath);
        LaunchPhases.Mark("resolve: version detected");
        return new ProbeFile(target.DisplayPath, target.UsdtBinary, detected is null ? null : detected with { Path = target.DisplayPath }, target);
    }

    /// <summary>The one-line error for process <paramref name="pid"/>, whose CPython (from <paramref name="binaryPath"/>) has no probes.</summary>
    private static CliException NoProbesIn(int pid, string binaryPath)
    {
        PythonVersion? version = null;
        try { version = PythonVersionDetector.DetectFromProcess(pid).Version; }
        catch (UsdtException) { version = PythonVersionDetector.FromFileName(binaryPath); }
        return new NoFunctionEventsException($"process {pid} runs {Describe(version)} from {binaryPath}, which was built without --with-dtrace and has no USDT probes; {Advice(version)}");
    }

    private static CliException NoProbes(string display, string real, ElfImage elf, DetectedPythonVersion? version)
    {
        // A python executable linked against libpython (pyenv, Fedora, --enable-shared builds) runs
        // the interpreter from the library: that is where the probes would be.
        if (ImportsPythonMain(elf))
        {
            var library = FindLibPython(real, version?.Version);
            if (library is not null)
            {
                UsdtBinary? lib = null;
                try { lib = UsdtBinary.Open(library); } catch (UsdtException) { }
                if (lib is not null && lib.HasProvider(PythonProbeCatalog.Provider))
                    return new CliException($"{display} has no USDT probes itself; its interpreter runs from {library}, which has them: pyprobe list {library}");
                // The library knows its exact version; the executable often only has its name.
                try { version = PythonVersionDetector.Detect(ElfImage.Open(library), library) ?? version; }
                catch (UsdtException) { }
                return new CliException($"{display} ({Describe(version?.Version)}, interpreter in {library}) has no USDT probes: it was built without --with-dtrace; {Advice(version?.Version)}");
            }
            return new CliException($"{display} ({Describe(version?.Version)}) has no USDT probes and runs the interpreter from a libpython3.X.so that was not found next to it; list that library, or use -p PID on a running process");
        }
        if (version is not null || PythonVersionDetector.FromFileName(real) is not null || LooksLikeCPython(elf))
            return new CliException($"{display} ({Describe(version?.Version)}) has no USDT probes: it was built without --with-dtrace; {Advice(version?.Version)}");
        return new CliException($"{display} has no USDT probes (no .note.stapsdt section) and is not a CPython interpreter");
    }

    private static string Describe(PythonVersion? version) => version is null ? "CPython" : $"CPython {version}";

    private static string Advice(PythonVersion? version)
    {
        var name = version is null ? "python3.X" : $"python{version.Major}.{version.Minor}";
        return $"use a build with probes, such as Debian's or Ubuntu's {name} (/usr/bin/{name}), or rebuild with ./configure --with-dtrace";
    }

    private static bool ImportsPythonMain(ElfImage elf)
    {
        var mains = elf.FindSymbols("Py_BytesMain").Concat(elf.FindSymbols("Py_Main")).ToList();
        return mains.Count > 0 && mains.All(s => !s.IsDefined);
    }

    private static bool LooksLikeCPython(ElfImage elf) =>
        elf.FindSymbols("_PyRuntime").Any(s => s.IsDefined) || elf.FindSymbols("Py_Initialize").Any(s => s.IsDefined);

    /// <summary>libpython3.X.so* in ../lib next to the executable (the layout of pyenv and ./configure --prefix installs).</summary>
    private static string? FindLibPython(string executable, PythonVersion? version)
    {
        var bin = Path.GetDirectoryName(executable);
        if (bin is null) return null;
        var lib = Path.GetFullPath(Path.Combine(bin, "..", "lib"));
        if (!Directory.Exists(lib)) return null;
        var pattern = version is null ? "libpython3.*.so*" : $"libpython{version.Major}.{version.Minor}*.so*";
        return Directory.EnumerateFiles(lib, pattern)
            .Where(f => PythonProcessFiles.IsLibPythonFileName(Path.GetFileName(f)))
            .OrderByDescending(f => f.Length)   // libpython3.11.so.1.0 over its libpython3.11.so link
            .FirstOrDefault();
    }

    private static string RealPath(string path)
    {
        try
        {
            return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        catch (IOException)
        {
            return Path.GetFullPath(path);
        }
    }

    private static bool IsScript(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            return f.ReadAtLeast(head, 2, throwOnEndOfStream: false) == 2 && head[0] == (byte)'#' && head[1] == (byte)'!';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read {path}: {e.Message}");
        }
    }
}

/// <summary>Finds a command on PATH the way a shell does (first executable regular file).</summary>
internal static class ExecutableLookup
{
    public static string? Find(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        if (string.IsNullOrEmpty(path)) return null;
        foreach (var dir in path.Split(':'))
        {
            var candidate = Path.Combine(dir.Length == 0 ? "." : dir, name);
            try
            {
                if (!File.Exists(candidate)) continue;
                var mode = File.GetUnixFileMode(candidate);
                if ((mode & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                    return candidate;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return null;
    }
}
