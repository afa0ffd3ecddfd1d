using Pyprobe.Python.Versions;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Cli.Output;

/// <summary>
/// Text output of `pyprobe list`: bpftrace's "usdt:PATH:PROVIDER:NAME" lines, or with -v a header
/// and an aligned block per probe (arguments, verdict, semaphore, sites).
/// </summary>
internal static class ProbeListTextWriter
{
    private const string Indent = "    ";
    private const int LabelWidth = 11;

    public static string ProbeLine(string path, string provider, string name) => $"usdt:{path}:{provider}:{name}";

    public static void Write(TextWriter w, ProbeListing listing, bool verbose)
    {
        if (!verbose)
        {
            foreach (var p in listing.Probes)
                w.WriteLine(ProbeLine(listing.Path, p.Provider, p.Name));
            return;
        }

        w.WriteLine(Header(listing));
        if (listing.FunctionEvents is { } events) Field(w, "functions", events);
        foreach (var p in listing.Probes)
        {
            w.WriteLine();
            w.WriteLine(ProbeLine(listing.Path, p.Provider, p.Name));
            int nameWidth = p.Arguments.Count == 0 ? 0 : p.Arguments.Max(a => a.Name.Length);
            for (int i = 0; i < p.Arguments.Count; i++)
                Field(w, $"arg{i}", $"{p.Arguments[i].Name.PadRight(nameWidth)}  {p.Arguments[i].CType}");
            if (p.Arguments.Count == 0)
                Field(w, "args", "none");
            Field(w, "fires", p.Verdict);
            if (p.CommonSemaphoreOffset is ulong sema)
                Field(w, "semaphore", sema == 0 ? "none" : $"file offset {Hex(sema)} (address {Hex(p.Sites[0].SemaphoreAddress)})");
            Field(w, "sites", p.Sites.Count.ToString(CultureInfo.InvariantCulture));
            int addressWidth = p.Sites.Max(s => Hex(s.Address).Length);
            int offsetWidth = p.Sites.Max(s => Hex(s.FileOffset).Length);
            for (int i = 0; i < p.Sites.Count; i++)
            {
                var s = p.Sites[i];
                var text = $"address {Hex(s.Address).PadRight(addressWidth)}  file offset {Hex(s.FileOffset).PadRight(offsetWidth)}  {s.ArgumentText}";
                if (p.CommonSemaphoreOffset is null)
                    text += $"  semaphore {(s.HasSemaphore ? $"file offset {Hex(s.SemaphoreFileOffset)}" : "none")}";
                Field(w, $"site {i + 1}", text.TrimEnd());
            }
        }
    }

    private static string Header(ProbeListing listing)
    {
        var file = listing.File;
        string where = file.Process is { } proc
            ? $"{listing.Path} (pid {proc.Pid}{(proc.Executable != listing.Path ? $", exe {proc.Executable}" : "")})"
            : listing.Path;
        string version = listing.Version is { } v
            ? $"CPython {v.Version} (from {SourceText(v.Source)})"
            : "CPython version unknown";
        int count = listing.Probes.Count;
        return $"{where}: {version}, {KindText(listing.Kind)}, {count} probe{(count == 1 ? "" : "s")}";
    }

    public static string SourceText(PythonVersionSource source) => source switch
    {
        PythonVersionSource.DebugOffsets => "_Py_DebugOffsets in .PyRuntime",
        PythonVersionSource.PyVersionSymbol => "the Py_Version symbol",
        PythonVersionSource.GetVersionLiteral => "the PY_VERSION literal Py_GetVersion names",
        PythonVersionSource.VersionString => "the PY_VERSION string in .rodata",
        PythonVersionSource.FileName => "the file name",
        _ => source.ToString(),
    };

    public static string KindText(ElfFileKind kind) => kind switch
    {
        ElfFileKind.Executable => "ELF ET_EXEC (position-dependent executable)",
        _ => "ELF ET_DYN (PIE executable or shared library)",
    };

    /// <summary>`list -v` of an interpreter without USDT probes: what it is and where its function events come from.</summary>
    public static void WriteWithoutProbes(TextWriter w, string where, string version, string why, string? functionEvents)
    {
        w.WriteLine($"{where}: {version}, no USDT probes ({why})");
        if (functionEvents is not null) Field(w, "functions", functionEvents);
    }

    private static void Field(TextWriter w, string label, string value) =>
        w.WriteLine($"{Indent}{label.PadRight(LabelWidth)}{value}");

    private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
