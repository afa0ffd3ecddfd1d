using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.Launching;

/// <summary>
/// Works out which Python binary a command line will run, before running it, so its probes can be
/// attached first: the command itself, the program a dynamic loader is asked to run
/// (`ld-linux-x86-64.so.2 --library-path DIR python3.X`), or a script's `#!` interpreter.
/// </summary>
public static class LaunchedInterpreter
{
    private static readonly HashSet<string> LoaderOptionsWithValue = ["--library-path", "--preload", "--argv0", "--audit", "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"];

    /// <summary>Returns the ELF file that carries the python probes for <paramref name="command"/>.</summary>
    public static string Resolve(IReadOnlyList<string> command)
    {
        if (command.Count == 0) throw new UsdtException("no command given after --");
        var executable = FindOnPath(command[0]) ?? throw new UsdtException($"{command[0]}: command not found");
        var binary = ResolveFile(executable, command.Skip(1).ToList(), depth: 0);
        if (!LooksLikePython(binary))
            throw new UsdtException(binary == executable
                ? $"{command[0]} is not a Python binary; name the interpreter after --, e.g. -- python3 script.py"
                : $"{command[0]} runs {binary}, which is not a Python binary; pass the interpreter itself after --");
        return binary;
    }

    private static string ResolveFile(string path, List<string> arguments, int depth)
    {
        if (depth > 4) throw new UsdtException($"{path}: too many levels of #! interpreters");
        var header = ReadHeader(path);
        if (header.StartsWith("#!", StringComparison.Ordinal))
        {
            var words = header[2..].Split('\n')[0].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) throw new UsdtException($"{path}: empty #! line");
            var interpreter = words[0];
            var rest = words.Skip(1).ToList();
            if (Path.GetFileName(interpreter) == "env" && rest.Count > 0)
            {
                var named = rest.SkipWhile(w => w.StartsWith('-')).FirstOrDefault() ?? throw new UsdtException($"{path}: cannot read its #! line");
                interpreter = FindOnPath(named) ?? throw new UsdtException($"{named}: command not found (from the #! line of {path})");
            }
            if (!IsElf(interpreter)) throw new UsdtException($"{path} runs {interpreter}, which is not an ELF binary; pass the interpreter itself after --");
            return ResolveFile(interpreter, [], depth + 1);
        }
        if (!header.StartsWith("\x7f" + "ELF", StringComparison.Ordinal))
            throw new UsdtException($"{path} is neither an ELF binary nor a #! script");

        if (IsDynamicLoader(path))
        {
            var program = ProgramRunByLoader(arguments) ?? throw new UsdtException($"{path} is the dynamic loader, but no program follows its options");
            return ResolveFile(FindOnPath(program) ?? program, [], depth + 1);
        }
        return path;
    }

    /// <summary>The first non-option argument of `ld.so [OPTIONS] PROGRAM ...`.</summary>
    private static string? ProgramRunByLoader(List<string> arguments)
    {
        for (var i = 0; i < arguments.Count; i++)
        {
            if (LoaderOptionsWithValue.Contains(arguments[i])) { i++; continue; }
            if (arguments[i].StartsWith("--", StringComparison.Ordinal)) continue;
            return arguments[i];
        }
        return null;
    }

    private static bool IsDynamicLoader(string path)
    {
        var name = Path.GetFileName(path);
        return name.StartsWith("ld-linux", StringComparison.Ordinal) || name.StartsWith("ld.so", StringComparison.Ordinal) || name.StartsWith("ld64.so", StringComparison.Ordinal);
    }

    /// <summary>A CPython interpreter: named like one, or carrying the python provider's probes.</summary>
    private static bool LooksLikePython(string path)
    {
        if (Path.GetFileName(path).StartsWith("python", StringComparison.Ordinal)) return true;
        try
        {
            return UsdtBinary.Open(path).HasProvider("python");
        }
        catch (UsdtException)
        {
            return false;
        }
    }

    private static bool IsElf(string path) => File.Exists(path) && ReadHeader(path).StartsWith("\x7f" + "ELF", StringComparison.Ordinal);

    private static string ReadHeader(string path)
    {
        using var file = File.OpenRead(path);
        var buffer = new byte[256];
        var read = file.Read(buffer);
        return string.Create(read, buffer, (span, bytes) => { for (var i = 0; i < span.Length; i++) span[i] = (char)bytes[i]; });
    }

    /// <summary>Like execvp: a name with a slash is a path, otherwise searched on PATH.</summary>
    public static string? FindOnPath(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? Path.GetFullPath(name) : null;
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
