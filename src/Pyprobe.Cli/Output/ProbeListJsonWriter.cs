using Pyprobe.Python.Versions;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Cli.Output;

/// <summary>`pyprobe list --format json`: one indented JSON document, strings escaped only where JSON needs it, as pyprobe's other JSON.</summary>
internal static class ProbeListJsonWriter
{
    // Relaxed: a reason's quoted 'line' came out as \u0027line\u0027 with the default encoder.
    public static void Write(TextWriter w, ProbeListing listing) =>
        w.WriteLine(RelaxedJson.Serialize(ToDocument(listing), PyprobeJsonContext.Default.ProbeListDocument, indented: true));

    public static ProbeListDocument ToDocument(ProbeListing listing)
    {
        var version = listing.Version is { } v
            ? new JsonPythonVersion(v.Version.Major, v.Version.Minor, v.Version.Micro, v.Version.ToString(), SourceName(v.Source))
            : null;
        var probes = listing.Probes.Select(p => new JsonProbe(
            p.Provider,
            p.Name,
            p.Arguments.Select(a => new JsonProbeArgument(a.Name, a.CType)).ToList(),
            p.Sites.Select(s => new JsonProbeSite(s.Address, s.FileOffset, s.HasSemaphore ? s.SemaphoreFileOffset : null, s.ArgumentText)).ToList(),
            p.Fires,
            p.Reason.Length == 0 ? null : p.Reason)).ToList();
        var process = listing.File.Process;
        return new ProbeListDocument(listing.Path, process?.Pid, process?.Executable, version, KindName(listing.Kind), probes);
    }

    private static string SourceName(PythonVersionSource source) => source switch
    {
        PythonVersionSource.DebugOffsets => "debug_offsets",
        PythonVersionSource.PyVersionSymbol => "py_version_symbol",
        PythonVersionSource.GetVersionLiteral => "py_getversion_literal",
        PythonVersionSource.VersionString => "version_string",
        PythonVersionSource.FileName => "file_name",
        _ => "unknown",
    };

    private static string KindName(ElfFileKind kind) => kind == ElfFileKind.Executable ? "executable" : "shared_object";
}
