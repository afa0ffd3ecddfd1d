using System.Text.Json.Serialization;

namespace Pyprobe.Cli.Output;

// Every type pyprobe writes as JSON is listed here: serialization is source-generated (no
// reflection, NativeAOT-safe) and keys are snake_case. Later commands add their event/summary
// records with another [JsonSerializable] line.

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ProbeListDocument))]
internal sealed partial class PyprobeJsonContext : JsonSerializerContext;

/// <summary>`pyprobe list --format json`.</summary>
/// <param name="Path">As printed in text mode (the -p form: the file as the process sees it).</param>
/// <param name="Pid">The process for -p, else null.</param>
/// <param name="Executable">/proc/PID/exe for -p (the loader when started through ld.so), else null.</param>
/// <param name="Kind">"executable" (ET_EXEC) or "shared_object" (ET_DYN: PIE or library).</param>
internal sealed record ProbeListDocument(
    string Path,
    int? Pid,
    string? Executable,
    JsonPythonVersion? Version,
    string Kind,
    IReadOnlyList<JsonProbe> Probes);

/// <param name="Text">"3.11.2", "3.15.0a3"…</param>
/// <param name="Source">"debug_offsets", "py_version_symbol", "version_string" or "file_name".</param>
internal sealed record JsonPythonVersion(int Major, int Minor, int? Micro, string Text, string Source);

/// <param name="Fires">"yes", "partly", "no"; null for a non-CPython probe or an unknown version.</param>
/// <param name="Reason">Why, or null when there is nothing to add.</param>
internal sealed record JsonProbe(
    string Provider,
    string Name,
    IReadOnlyList<JsonProbeArgument> Arguments,
    IReadOnlyList<JsonProbeSite> Sites,
    string? Fires,
    string? Reason);

internal sealed record JsonProbeArgument(string Name, string Type);

/// <param name="Address">Link-time virtual address of the probe instruction.</param>
/// <param name="FileOffset">Its file offset (what uprobes attach to).</param>
/// <param name="SemaphoreOffset">File offset of the semaphore, null when the probe has none.</param>
/// <param name="Spec">The note's raw argument string, e.g. "8@%rbp 8@%r12 -4@%eax".</param>
internal sealed record JsonProbeSite(ulong Address, ulong FileOffset, ulong? SemaphoreOffset, string Spec);
